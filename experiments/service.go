package experiments

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/liftlab/lift/internal/derrors"
)

// Store persists configuration documents. Every write records an audit entry in the
// same transaction, so the log cannot miss a change.
type Store interface {
	// LoadConfig reads every document the decision snapshot needs.
	LoadConfig(ctx context.Context) (*Config, error)
	// List returns the documents of a kind ordered by key.
	List(ctx context.Context, kind Kind) ([]json.RawMessage, error)
	// Get returns derrors.ErrNotFound if no document of that kind has the key.
	Get(ctx context.Context, kind Kind, key string) (json.RawMessage, error)
	// Create returns derrors.ErrConflict if the key is taken.
	Create(ctx context.Context, kind Kind, key string, doc json.RawMessage, actor string) error
	// Update replaces a document with what change returns given the current one, while
	// holding a lock on it. It returns derrors.ErrNotFound if the key does not exist, and any
	// error change returns.
	Update(ctx context.Context, kind Kind, key, action, actor string,
		change func(before json.RawMessage) (json.RawMessage, error)) (json.RawMessage, error)
	// Delete returns derrors.ErrNotFound if the key does not exist.
	Delete(ctx context.Context, kind Kind, key, actor string) error
	// Audit lists audit entries, newest first.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// SegmentVersions lists every definition a segment key has had, oldest first
	// (recorded by Create and Update, kept after Delete); Published and Draft unset.
	SegmentVersions(ctx context.Context, key string) ([]SegmentVersion, error)
}

// AuditEntry is one recorded configuration change.
type AuditEntry struct {
	ID     int64           `json:"id"`
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	Entity Kind            `json:"entity"`
	Key    string          `json:"key"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// AuditQuery filters the audit log; zero fields match everything.
type AuditQuery struct {
	Entity Kind
	Key    string
	Limit  int
}

// Service is the management API of the configuration: validation, lifecycle and
// referential checks on top of a Store.
type Service struct {
	store Store
}

// NewService returns a Service writing to store.
func NewService(store Store) *Service { return &Service{store: store} }

// document is what every configuration document type offers the service.
type document interface {
	docKey() string
	setKey(string)
	normalize()
	validate(Refs) error
}

func (e *Experiment) docKey() string        { return e.Key }
func (e *Experiment) setKey(k string)       { e.Key = k }
func (e *Experiment) normalize()            { e.Normalize() }
func (e *Experiment) validate(r Refs) error { return e.Validate(r) }
func (f *Flag) docKey() string              { return f.Key }
func (f *Flag) setKey(k string)             { f.Key = k }
func (f *Flag) normalize()                  { f.Normalize() }
func (f *Flag) validate(r Refs) error       { return f.Validate(r) }
func (s *Segment) docKey() string           { return s.Key }
func (s *Segment) setKey(k string)          { s.Key = k }
func (s *Segment) normalize()               {}
func (s *Segment) validate(Refs) error      { return s.Validate() }
func (g *SavedGroup) docKey() string        { return g.Key }
func (g *SavedGroup) setKey(k string)       { g.Key = k }
func (g *SavedGroup) normalize()            {}
func (g *SavedGroup) validate(Refs) error   { return g.Validate() }

func newDocument(kind Kind) document {
	switch kind {
	case KindExperiment:
		return &Experiment{}
	case KindFlag:
		return &Flag{}
	case KindSegment:
		return &Segment{}
	case KindSavedGroup:
		return &SavedGroup{}
	case KindFeature:
		return &Feature{}
	case KindRecommender:
		return &Recommender{}
	}
	panic("experiments: unknown kind " + string(kind))
}

// decode parses a request body strictly: unknown fields are reported by name, so a
// typo such as "covrage" is not silently ignored.
func decode(kind Kind, body []byte) (document, error) {
	if !json.Valid(body) {
		return nil, derrors.ErrMalformed
	}
	d := newDocument(kind)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(d); err != nil {
		return nil, decodeError(err)
	}
	return d, nil
}

// decodeError turns encoding/json's errors into field errors.
func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(document)"
		}
		return derrors.Invalid(field, "must be a JSON "+jsonType(typeErr.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return derrors.Invalid(field, "unknown field")
	}
	return derrors.Invalid("(document)", err.Error())
}

func jsonType(goKind string) string {
	switch goKind {
	case "slice", "array":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	case "float64", "int", "int64":
		return "number"
	case "bool":
		return "boolean"
	}
	return goKind
}

// storeRefs answers reference checks from the store.
type storeRefs struct {
	ctx   context.Context
	store Store
}

func (r storeRefs) HasSegment(key string) bool {
	_, err := r.store.Get(r.ctx, KindSegment, key)
	return err == nil
}

func (r storeRefs) HasExperiment(key string) bool {
	_, err := r.store.Get(r.ctx, KindExperiment, key)
	return err == nil
}

// Create validates and stores a new document. It returns derrors.ErrMalformed, a
// *derrors.ValidationError or derrors.ErrConflict (key taken, also across experiments and flags,
// which share the decision namespace).
func (s *Service) Create(ctx context.Context, actor string, kind Kind, body []byte) (json.RawMessage, error) {
	d, err := decode(kind, body)
	if err != nil {
		return nil, err
	}
	d.normalize()
	if seg, ok := d.(*Segment); ok {
		if err := s.newSegment(ctx, seg); err != nil {
			return nil, err
		}
	}
	if e, ok := d.(*Experiment); ok {
		newExperiment(e, time.Now())
	}
	if err := d.validate(storeRefs{ctx, s.store}); err != nil {
		return nil, err
	}
	if err := s.checkKeyFree(ctx, kind, d.docKey()); err != nil {
		return nil, err
	}
	doc, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	if err := s.store.Create(ctx, kind, d.docKey(), doc, actor); err != nil {
		return nil, err
	}
	return doc, nil
}

// checkKeyFree refuses an experiment key used by a flag and vice versa: both answer
// under the same key in /v1/decide and OFREP.
func (s *Service) checkKeyFree(ctx context.Context, kind Kind, key string) error {
	other := map[Kind]Kind{KindExperiment: KindFlag, KindFlag: KindExperiment}[kind]
	if other == "" {
		return nil
	}
	if _, err := s.store.Get(ctx, other, key); err == nil {
		return &derrors.ConflictError{Reason: fmt.Sprintf("a %s with key %q exists", other, key)}
	} else if !errors.Is(err, derrors.ErrNotFound) {
		return err
	}
	return nil
}

// Replace validates and stores a new version of a document. An experiment's status
// changes only through Transition; a segment saved with "status":"draft" keeps its
// published definition and stores the change as its draft (segment_versions.go). It
// returns derrors.ErrNotFound, derrors.ErrMalformed or a *derrors.ValidationError.
func (s *Service) Replace(ctx context.Context, actor string, kind Kind, key string, body []byte) (json.RawMessage, error) {
	d, err := decode(kind, body)
	if err != nil {
		return nil, err
	}
	if d.docKey() == "" {
		d.setKey(key)
	}
	if d.docKey() != key {
		return nil, derrors.Invalid("key", fmt.Sprintf("must match the key in the URL (%q)", key))
	}
	action := "update"
	if seg, ok := d.(*Segment); ok && seg.Status == SegmentDraft {
		action = "draft"
	}
	return s.store.Update(ctx, kind, key, action, actor, func(before json.RawMessage) (json.RawMessage, error) {
		if seg, ok := d.(*Segment); ok {
			var old Segment
			if err := json.Unmarshal(before, &old); err != nil {
				return nil, err
			}
			latest, err := s.latestVersion(ctx, key)
			if err != nil {
				return nil, err
			}
			merged := mergeSegment(&old, seg, latest)
			if err := validateSegment(merged); err != nil {
				return nil, err
			}
			return json.Marshal(merged)
		}
		if e, ok := d.(*Experiment); ok {
			var old Experiment
			if err := json.Unmarshal(before, &old); err != nil {
				return nil, err
			}
			if e.Status == "" {
				e.Status = old.Status
			} else if e.Status != old.Status {
				return nil, derrors.Invalid("status", "change the status with POST /api/v1/experiments/{key}/start, /pause or /stop")
			}
			keepStored(e, &old)
		}
		d.normalize()
		if err := d.validate(storeRefs{ctx, s.store}); err != nil {
			return nil, err
		}
		return json.Marshal(d)
	})
}

// newExperiment sets what lift decides for a new experiment: sequential testing
// unless the document turns it off, and the start time of one created running.
func newExperiment(e *Experiment, now time.Time) {
	if e.Analysis == nil {
		e.Analysis = &Analysis{}
	}
	if e.Analysis.Sequential == nil {
		on := true
		e.Analysis.Sequential = &on
	}
	e.StartedAt = nil
	if e.Status == StatusRunning {
		now = now.UTC()
		e.StartedAt = &now
	}
}

// keepStored carries over what a replacement may not change or may leave out: the
// start time lift recorded, and the stored choice of sequential testing when the new
// document does not make one (documents written before it was a choice leave it out).
func keepStored(e, old *Experiment) {
	e.StartedAt = old.StartedAt
	if e.Analysis == nil || e.Analysis.Sequential == nil {
		if old.Analysis != nil && old.Analysis.Sequential != nil {
			if e.Analysis == nil {
				e.Analysis = &Analysis{}
			}
			e.Analysis.Sequential = old.Analysis.Sequential
		}
	}
}

// transitions lists, per action, the statuses it may start from and where it leads.
var transitions = map[string]struct {
	from []string
	to   string
}{
	"start": {from: []string{StatusDraft, StatusPaused}, to: StatusRunning},
	"pause": {from: []string{StatusRunning}, to: StatusPaused},
	"stop":  {from: []string{StatusRunning, StatusPaused}, to: StatusStopped},
}

// Transition moves an experiment through its lifecycle: draft → running → paused or
// stopped (paused may run again; stopped is final). It returns derrors.ErrNotFound, or
// derrors.ErrConflict when the transition is not allowed from the current status.
func (s *Service) Transition(ctx context.Context, actor, key, action string) (json.RawMessage, error) {
	t, ok := transitions[action]
	if !ok {
		return nil, fmt.Errorf("experiments: unknown action %q: %w", action, derrors.ErrNotFound)
	}
	return s.store.Update(ctx, KindExperiment, key, action, actor, func(before json.RawMessage) (json.RawMessage, error) {
		var e Experiment
		if err := json.Unmarshal(before, &e); err != nil {
			return nil, err
		}
		allowed := false
		for _, from := range t.from {
			allowed = allowed || e.Status == from
		}
		if !allowed {
			return nil, &derrors.ConflictError{Reason: fmt.Sprintf("cannot %s an experiment that is %s", action, e.Status)}
		}
		e.Status = t.to
		if e.Status == StatusRunning && e.StartedAt == nil {
			now := time.Now().UTC()
			e.StartedAt = &now
		}
		return json.Marshal(&e)
	})
}

// Delete removes a document. It returns derrors.ErrNotFound, or derrors.ErrConflict while another
// document still references it.
func (s *Service) Delete(ctx context.Context, actor string, kind Kind, key string) error {
	if kind == KindExperiment || kind == KindSegment {
		cfg, err := s.store.LoadConfig(ctx)
		if err != nil {
			return err
		}
		if by := referencedBy(cfg, kind, key); by != "" {
			return &derrors.ConflictError{Reason: fmt.Sprintf("%s %q is used by %s", kind, key, by)}
		}
	}
	return s.store.Delete(ctx, kind, key, actor)
}

// referencedBy names a document that references the given one, or "" if none does.
func referencedBy(cfg *Config, kind Kind, key string) string {
	for _, f := range cfg.Flags {
		for _, r := range f.Rules {
			if kind == KindExperiment && r.Experiment == key || kind == KindSegment && r.Segment == key {
				return fmt.Sprintf("flag %q", f.Key)
			}
		}
	}
	if kind == KindSegment {
		for _, e := range cfg.Experiments {
			uses := e.Segments
			if e.Bandit != nil {
				uses = append(uses[:len(uses):len(uses)], e.Bandit.PerSegment...)
			}
			for _, k := range uses {
				if k == key {
					return fmt.Sprintf("experiment %q", e.Key)
				}
			}
		}
	}
	return ""
}

// Get returns derrors.ErrNotFound if the document does not exist.
func (s *Service) Get(ctx context.Context, kind Kind, key string) (json.RawMessage, error) {
	return s.store.Get(ctx, kind, key)
}

// List returns every document of a kind.
func (s *Service) List(ctx context.Context, kind Kind) ([]json.RawMessage, error) {
	return s.store.List(ctx, kind)
}

// Audit lists recorded changes, newest first.
func (s *Service) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	return s.store.Audit(ctx, q)
}
