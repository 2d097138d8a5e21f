package typereg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/internal/derrors"
)

// Registry serves the current version of every custom event type from memory, so
// validating an event never waits on Postgres; Reload swaps in a fresh set.
type Registry struct {
	store   ingest.TypeStore
	current atomic.Pointer[map[string]*Schema]
}

// New returns an empty registry over store; call Reload to fill it.
func New(store ingest.TypeStore) *Registry {
	r := &Registry{store: store}
	r.current.Store(&map[string]*Schema{})
	return r
}

// Lookup implements ingest.Types.
func (r *Registry) Lookup(name string) (ingest.PropertiesValidator, bool) {
	s, ok := (*r.current.Load())[name]
	return s, ok
}

// Reload reads the latest version of every type. On error the previous set stays.
func (r *Registry) Reload(ctx context.Context) error {
	types, err := r.store.LatestTypes(ctx)
	if err != nil {
		return fmt.Errorf("typereg: reload: %w", err)
	}
	next := make(map[string]*Schema, len(types))
	for _, t := range types {
		s, err := Compile(t.Schema)
		if err != nil {
			// Stored schemas were compiled when saved; skip one that no longer
			// compiles rather than dropping every type.
			continue
		}
		next[t.Name] = s
	}
	r.current.Store(&next)
	return nil
}

// Service manages event types for the API.
type Service struct {
	store ingest.TypeStore
	now   func() time.Time
}

// NewService returns the management service over store.
func NewService(store ingest.TypeStore) *Service {
	return &Service{store: store, now: time.Now}
}

// List returns the latest version of every type.
func (s *Service) List(ctx context.Context) ([]ingest.EventType, error) {
	return s.store.LatestTypes(ctx)
}

// Versions returns every version of a type, oldest first, or derrors.ErrNotFound.
func (s *Service) Versions(ctx context.Context, name string) ([]ingest.EventType, error) {
	vs, err := s.store.TypeVersions(ctx, name)
	if err == nil && len(vs) == 0 {
		return nil, derrors.ErrNotFound
	}
	return vs, err
}

// Create saves version 1 of a new type. It returns a *derrors.ValidationError for a
// bad name or schema and derrors.ErrConflict if the type exists.
func (s *Service) Create(ctx context.Context, actor, name string, schema json.RawMessage) (ingest.EventType, error) {
	if err := ingest.CheckTypeName(name); err != nil {
		return ingest.EventType{}, err
	}
	if _, err := Compile(schema); err != nil {
		return ingest.EventType{}, err
	}
	t := ingest.EventType{Name: name, Version: 1, Schema: schema, CreatedAt: s.now().UTC(), CreatedBy: actor}
	return t, s.store.InsertType(ctx, t)
}

// Update saves a new version of a type. It returns derrors.ErrNotFound if the type
// does not exist, and a *derrors.ValidationError if the schema is invalid or the
// change would break consumers (see Breaking); derrors.ErrConflict if another version
// was saved concurrently.
func (s *Service) Update(ctx context.Context, actor, name string, schema json.RawMessage) (ingest.EventType, error) {
	vs, err := s.Versions(ctx, name)
	if err != nil {
		return ingest.EventType{}, err
	}
	if _, err := Compile(schema); err != nil {
		return ingest.EventType{}, err
	}
	prev := vs[len(vs)-1]
	if problems := Breaking(prev.Schema, schema); len(problems) > 0 {
		return ingest.EventType{}, &derrors.ValidationError{Fields: problems}
	}
	t := ingest.EventType{Name: name, Version: prev.Version + 1, Schema: schema, CreatedAt: s.now().UTC(), CreatedBy: actor}
	if err := s.store.InsertType(ctx, t); err != nil {
		if errors.Is(err, derrors.ErrConflict) {
			return ingest.EventType{}, fmt.Errorf("typereg: %s version %d was saved meanwhile: %w", name, t.Version, err)
		}
		return ingest.EventType{}, err
	}
	return t, nil
}
