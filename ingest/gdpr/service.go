package gdpr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/liftlab/lift/ingest"
)

// MaxUserIDLen bounds the ids accepted, as everywhere else.
const MaxUserIDLen = ingest.MaxUserIDLen

// ValidationError is an invalid request: a user id that cannot be erased or
// exported, a retention setting out of range.
type ValidationError struct{ Field, Message string }

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Service takes erasure requests and answers exports.
type Service struct {
	Jobs          Jobs
	Events        Events
	Memberships   Memberships
	Configuration Configuration
	// Pseudonymizer is the one the edge uses (nil when pseudonymisation is off):
	// an operator names the user by the id their application knows.
	Pseudonymizer *ingest.Pseudonymizer
	Now           func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// ids are the ids under which lift may have stored the user: as given, and its
// pseudonym (data from before pseudonymisation was turned on keeps the raw id).
func (s *Service) ids(userID string) ([]string, error) {
	switch {
	case userID == "":
		return nil, &ValidationError{"user_id", "is required"}
	case len(userID) > MaxUserIDLen:
		return nil, &ValidationError{"user_id", fmt.Sprintf("must be at most %d bytes", MaxUserIDLen)}
	}
	ids := []string{userID}
	if p := s.Pseudonymizer.Pseudonymize(userID); p != userID {
		ids = append(ids, p)
	}
	return ids, nil
}

// Subject is how jobs name the user: the pseudonym (keyed, so it cannot be
// reversed by guessing ids), else a digest of the id.
func (s *Service) Subject(userID string) string {
	if s.Pseudonymizer != nil {
		return s.Pseudonymizer.Pseudonymize(userID)
	}
	sum := sha256.Sum256([]byte(userID))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Request starts the erasure of a user, or returns the job already open for them. It
// returns a *ValidationError for an empty or too long id.
func (s *Service) Request(ctx context.Context, actor, userID string) (Job, error) {
	ids, err := s.ids(userID)
	if err != nil {
		return Job{}, err
	}
	subject := s.Subject(userID)
	existing, err := s.Jobs.BySubject(ctx, subject)
	if err != nil {
		return Job{}, err
	}
	for _, j := range existing {
		if j.Status != StatusDone {
			return j, nil
		}
	}
	j := Job{ID: uuid.Must(uuid.NewV7()).String(), Subject: subject, Status: StatusPending, RequestedBy: actor,
		RequestedAt: s.now().UTC(), UserIDs: ids}
	for _, name := range Steps {
		j.Steps = append(j.Steps, Step{Name: name})
	}
	if err := s.Jobs.Create(ctx, j); err != nil {
		return Job{}, err
	}
	return j, nil
}

// Export is everything lift stores about one user.
type Export struct {
	UserID      string    `json:"user_id"`
	GeneratedAt time.Time `json:"generated_at"`
	// IDs are the ids the user's data is stored under.
	IDs []string `json:"ids"`
	// ClickHouse holds the user's rows of every table with a user_id column.
	ClickHouse map[string][]map[string]any `json:"clickhouse"`
	// SegmentMemberships are the user's behavioural segment memberships.
	SegmentMemberships []map[string]any `json:"segment_memberships"`
	// Configuration names the documents that mention the user (saved groups,
	// conditions).
	Configuration []string `json:"configuration"`
	// Erasures are the erasure jobs for the user.
	Erasures []Job `json:"erasures"`
}

// Export gathers what is stored about a user. It returns a *ValidationError for an
// empty or too long id.
func (s *Service) Export(ctx context.Context, userID string) (Export, error) {
	ids, err := s.ids(userID)
	if err != nil {
		return Export{}, err
	}
	linked, err := s.Events.LinkedIDs(ctx, ids)
	if err != nil {
		return Export{}, err
	}
	ids = union(ids, linked)
	x := Export{UserID: userID, GeneratedAt: s.now().UTC(), IDs: ids}
	if x.ClickHouse, err = s.Events.Export(ctx, ids); err != nil {
		return Export{}, err
	}
	if x.SegmentMemberships, err = s.Memberships.Memberships(ctx, ids); err != nil {
		return Export{}, err
	}
	if x.Configuration, err = s.Configuration.Mentions(ctx, ids); err != nil {
		return Export{}, err
	}
	if x.Erasures, err = s.Jobs.BySubject(ctx, s.Subject(userID)); err != nil {
		return Export{}, err
	}
	if x.SegmentMemberships == nil {
		x.SegmentMemberships = []map[string]any{}
	}
	if x.Configuration == nil {
		x.Configuration = []string{}
	}
	if x.Erasures == nil {
		x.Erasures = []Job{}
	}
	return x, nil
}

// union appends the ids of b not in a.
func union(a, b []string) []string {
	for _, id := range b {
		if id != "" && !slices.Contains(a, id) {
			a = append(a, id)
		}
	}
	return a
}

// Job returns ErrNotFound if there is no such job.
func (s *Service) Job(ctx context.Context, id string) (Job, error) { return s.Jobs.Get(ctx, id) }

// List returns the newest jobs first, at most limit.
func (s *Service) List(ctx context.Context, limit int) ([]Job, error) { return s.Jobs.List(ctx, limit) }
