package experiments

import (
	"context"
	"encoding/json"
)

// Manager is the configuration service as lift's two front ends call it: the
// management API (web) and the dashboard (web/dashboard). *Service implements it; its
// methods document their errors. Interfaces usually belong to their consumer, but
// both front ends call every one of these methods, so the interface is declared once
// here, beside the use cases, rather than twice or in one front end that the other
// would then have to import. Test doubles embed it and override what they use.
type Manager interface {
	Create(ctx context.Context, actor string, kind Kind, body []byte) (json.RawMessage, error)
	Replace(ctx context.Context, actor string, kind Kind, key string, body []byte) (json.RawMessage, error)
	Transition(ctx context.Context, actor, key, action string) (json.RawMessage, error)
	Delete(ctx context.Context, actor string, kind Kind, key string) error
	Get(ctx context.Context, kind Kind, key string) (json.RawMessage, error)
	List(ctx context.Context, kind Kind) ([]json.RawMessage, error)
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	PublishSegment(ctx context.Context, actor, key string, version int) (json.RawMessage, error)
	DiscardSegmentDraft(ctx context.Context, actor, key string) (json.RawMessage, error)
	SegmentVersions(ctx context.Context, key string) ([]SegmentVersion, error)
}

var _ Manager = (*Service)(nil)
