package experiments

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/liftlab/lift/internal/derrors"
)

// Segment definitions are versioned and may be previewed before they affect
// decisions:
//
//   - Every definition (kind, condition, rule, ttl) a segment has had is kept with its
//     number (SegmentVersions); editing only the name or description makes no version.
//   - Saving with "status":"draft" stores the change in the document's draft: the
//     segment engine computes its membership in preview ("<key>@draft", counts in the
//     segment's stats) while decisions keep using the published definition. A new
//     segment created as a draft matches nobody until published.
//   - PublishSegment makes the draft (or an earlier version) the published one;
//     DiscardSegmentDraft drops the draft. Both are audited like any change.
//   - Saving without a status publishes at once, as before versions existed.

// SegmentVersion is one definition a segment has had.
type SegmentVersion struct {
	Version   int             `json:"version"`
	Segment   json.RawMessage `json:"segment"`
	CreatedAt time.Time       `json:"created_at"`
	CreatedBy string          `json:"created_by"`
	// Published and Draft mark the versions the document holds now.
	Published bool `json:"published"`
	Draft     bool `json:"draft"`
}

// SameDefinition reports whether two segments define the same membership: same kind,
// condition, rule and TTL (JSON compared as values, not spelling).
func SameDefinition(a, b *Segment) bool {
	return a.Kind == b.Kind && a.TTL == b.TTL && sameJSON(a.Condition, b.Condition) && sameJSON(a.Rule, b.Rule)
}

func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// IsPublished reports whether decisions use the segment (documents written before
// statuses existed are published).
func (s *Segment) IsPublished() bool { return s.Status != SegmentDraft }

// newSegment numbers a segment being created after every version its key has had
// (a deleted segment's versions are kept).
func (s *Service) newSegment(ctx context.Context, seg *Segment) error {
	latest, err := s.latestVersion(ctx, seg.Key)
	if err != nil {
		return err
	}
	seg.Version = latest + 1
	if seg.Status == "" {
		seg.Status = SegmentPublished
	}
	seg.Draft = nil
	return nil
}

// latestVersion is the highest version number a segment key has had.
func (s *Service) latestVersion(ctx context.Context, key string) (int, error) {
	versions, err := s.store.SegmentVersions(ctx, key)
	if err != nil {
		return 0, err
	}
	latest := 0
	for _, v := range versions {
		latest = max(latest, v.Version)
	}
	return latest, nil
}

// mergeSegment computes the document that replaces old when a client saves req; a
// new definition is numbered after latest. A draft of a published segment goes to
// old's draft; anything else replaces the top level, keeping a pending draft that
// differs from it.
func mergeSegment(old, req *Segment, latest int) *Segment {
	if old.Status == "" {
		old.Status = SegmentPublished
	}
	old.Version = max(old.Version, 1)
	next := max(old.Version, latest) + 1
	if old.Draft != nil {
		next = max(next, old.Draft.Version+1)
	}
	req.Draft, req.Version = nil, 0
	if req.Status == SegmentDraft && old.IsPublished() {
		out := *old
		switch {
		case SameDefinition(req, old):
			out.Draft = nil // the draft would be what is published: nothing to preview
			return &out
		case old.Draft != nil && SameDefinition(req, old.Draft):
			req.Version = old.Draft.Version
		default:
			req.Version = next
		}
		out.Draft = req
		return &out
	}
	if req.Status == "" {
		req.Status = SegmentPublished
	}
	req.Version = next
	if SameDefinition(req, old) {
		req.Version = old.Version
	}
	if old.Draft != nil && !SameDefinition(old.Draft, req) {
		req.Draft = old.Draft
	}
	return req
}

// validateSegment checks a segment document and its draft.
func validateSegment(seg *Segment) error {
	if err := seg.Validate(); err != nil {
		return err
	}
	if seg.Draft == nil {
		return nil
	}
	if err := seg.Draft.Validate(); err != nil {
		if ve, ok := err.(*derrors.ValidationError); ok {
			for i := range ve.Fields {
				ve.Fields[i].Field = "draft." + ve.Fields[i].Field
			}
		}
		return err
	}
	return nil
}

// PublishSegment makes a segment's draft the published definition, or with version
// > 0 republishes that earlier version (a rollback; a pending draft stays). It returns
// derrors.ErrNotFound, a *derrors.ConflictError when there is no draft to publish, or a
// *derrors.ValidationError for an unknown version.
func (s *Service) PublishSegment(ctx context.Context, actor, key string, version int) (json.RawMessage, error) {
	return s.store.Update(ctx, KindSegment, key, "publish", actor, func(before json.RawMessage) (json.RawMessage, error) {
		var old Segment
		if err := json.Unmarshal(before, &old); err != nil {
			return nil, err
		}
		var out Segment
		switch {
		case version > 0:
			def, err := s.segmentVersion(ctx, key, version)
			if err != nil {
				return nil, err
			}
			out = *def
			if old.Draft != nil && !SameDefinition(old.Draft, &out) {
				out.Draft = old.Draft
			}
		case old.Draft != nil:
			out = *old.Draft
		case !old.IsPublished():
			out = old
		default:
			return nil, &derrors.ConflictError{Reason: fmt.Sprintf("segment %q has no draft to publish", key)}
		}
		out.Key, out.Status = key, SegmentPublished
		if err := validateSegment(&out); err != nil {
			return nil, err
		}
		return json.Marshal(&out)
	})
}

func (s *Service) segmentVersion(ctx context.Context, key string, version int) (*Segment, error) {
	versions, err := s.store.SegmentVersions(ctx, key)
	if err != nil {
		return nil, err
	}
	for _, v := range versions {
		if v.Version == version {
			var def Segment
			if err := json.Unmarshal(v.Segment, &def); err != nil {
				return nil, err
			}
			def.Version = version
			return &def, nil
		}
	}
	return nil, derrors.Invalid("version", fmt.Sprintf("segment %q has no version %d", key, version))
}

// DiscardSegmentDraft drops a published segment's draft. It returns derrors.ErrNotFound, or a
// *derrors.ConflictError when there is no draft (or the segment was never published: delete
// it instead).
func (s *Service) DiscardSegmentDraft(ctx context.Context, actor, key string) (json.RawMessage, error) {
	return s.store.Update(ctx, KindSegment, key, "discard-draft", actor, func(before json.RawMessage) (json.RawMessage, error) {
		var old Segment
		if err := json.Unmarshal(before, &old); err != nil {
			return nil, err
		}
		switch {
		case !old.IsPublished():
			return nil, &derrors.ConflictError{Reason: fmt.Sprintf("segment %q was never published: delete it instead", key)}
		case old.Draft == nil:
			return nil, &derrors.ConflictError{Reason: fmt.Sprintf("segment %q has no draft", key)}
		}
		old.Draft = nil
		return json.Marshal(&old)
	})
}

// SegmentVersions lists every definition a segment has had, oldest first. It returns
// derrors.ErrNotFound if the segment does not exist.
func (s *Service) SegmentVersions(ctx context.Context, key string) ([]SegmentVersion, error) {
	doc, err := s.store.Get(ctx, KindSegment, key)
	if err != nil {
		return nil, err
	}
	var cur Segment
	if err := json.Unmarshal(doc, &cur); err != nil {
		return nil, err
	}
	versions, err := s.store.SegmentVersions(ctx, key)
	if err != nil {
		return nil, err
	}
	for i := range versions {
		v := &versions[i]
		v.Published = cur.IsPublished() && v.Version == max(cur.Version, 1)
		v.Draft = cur.Draft != nil && v.Version == cur.Draft.Version || !cur.IsPublished() && v.Version == max(cur.Version, 1)
	}
	return versions, nil
}
