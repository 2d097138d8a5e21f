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
	"github.com/liftlab/lift/internal/derrors"
)

// MaxUserIDLen bounds the ids accepted, as everywhere else.
const MaxUserIDLen = ingest.MaxUserIDLen

// Service takes erasure requests and answers exports.
type Service struct {
	Jobs          Jobs
	Events        Events
	Memberships   Memberships
	Configuration Configuration
	// Subjects names the user in jobs and in the audit log.
	Subjects *Subjects
	// Audit records exports; nil records none (tests).
	Audit AuditLog
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
		return nil, derrors.BadRequest("user_id", "is required")
	case len(userID) > MaxUserIDLen:
		return nil, derrors.BadRequest("user_id", fmt.Sprintf("must be at most %d bytes", MaxUserIDLen))
	}
	ids := []string{userID}
	if p := s.Pseudonymizer.Pseudonymize(userID); p != userID {
		ids = append(ids, p)
	}
	return ids, nil
}

// subjects are how jobs name the user: the subject of the id as stored (so that
// the raw id and its pseudonym name the same user), then the forms of jobs from
// before subjects were keyed (the pseudonym, or a plain digest).
func (s *Service) subjects(ctx context.Context, userID string) ([]string, error) {
	sub, err := s.Subjects.Of(ctx, s.Pseudonymizer.Pseudonymize(userID))
	if err != nil {
		return nil, err
	}
	legacy := s.Pseudonymizer.Pseudonymize(userID)
	if s.Pseudonymizer == nil {
		sum := sha256.Sum256([]byte(userID))
		legacy = "sha256:" + hex.EncodeToString(sum[:])
	}
	return []string{sub, legacy}, nil
}

// Request starts the erasure of a user, or returns the job already open for them,
// with the linked ids it does not follow: those a client key linked (or stored before
// lift recorded sources) and include does not confirm. It returns a
// derrors.BadRequest (*derrors.ValidationError) for an empty or too long id or an
// include that is not linked to the user, and a *derrors.ConflictError when include
// adds ids to a job already open.
func (s *Service) Request(ctx context.Context, actor, userID string, include []string) (Job, []Link, error) {
	ids, err := s.ids(userID)
	if err != nil {
		return Job{}, nil, err
	}
	r, err := s.resolve(ctx, ids, include)
	if err != nil {
		return Job{}, nil, err
	}
	subjects, err := s.subjects(ctx, userID)
	if err != nil {
		return Job{}, nil, err
	}
	existing, err := s.Jobs.BySubject(ctx, subjects...)
	if err != nil {
		return Job{}, nil, err
	}
	for _, j := range existing {
		if j.Status == StatusDone {
			continue
		}
		for _, id := range r.confirmed {
			if !slices.Contains(j.UserIDs, id) {
				return Job{}, nil, &derrors.ConflictError{Reason: fmt.Sprintf("erasure job %s for this user is still open: "+
					"confirm linked ids once it is done, or erase them on their own", j.ID)}
			}
		}
		return j, r.unconfirmed, nil
	}
	confirmed, err := s.Subjects.All(ctx, r.confirmed)
	if err != nil {
		return Job{}, nil, err
	}
	j := Job{ID: uuid.Must(uuid.NewV7()).String(), Subject: subjects[0], Status: StatusPending, RequestedBy: actor,
		RequestedAt: s.now().UTC(), UserIDs: r.ids, ConfirmedLinks: sortedValues(confirmed)}
	for _, name := range Steps {
		j.Steps = append(j.Steps, Step{Name: name})
	}
	if err := s.Jobs.Create(ctx, j); err != nil {
		return Job{}, nil, err
	}
	return j, r.unconfirmed, nil
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// Export is everything lift stores about one user.
type Export struct {
	UserID      string    `json:"user_id"`
	GeneratedAt time.Time `json:"generated_at"`
	// IDs are the ids the user's data is stored under: as given, the pseudonym,
	// the ids trusted sources link to them and the linked ids the operator
	// confirmed.
	IDs []string `json:"ids"`
	// UnconfirmedLinks are linked ids not followed (a client key linked them, or
	// they were stored before lift recorded sources): confirm to include them.
	UnconfirmedLinks []Link `json:"unconfirmed_links"`
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

// Export gathers what is stored about a user, following the linked ids of include
// (confirmed by the operator), and records the export in the audit log. It returns a
// derrors.BadRequest for an empty or too long id or an include that is not linked to
// the user.
func (s *Service) Export(ctx context.Context, actor, userID string, include []string) (Export, error) {
	ids, err := s.ids(userID)
	if err != nil {
		return Export{}, err
	}
	r, err := s.resolve(ctx, ids, include)
	if err != nil {
		return Export{}, err
	}
	subjects, err := s.subjects(ctx, userID)
	if err != nil {
		return Export{}, err
	}
	x := Export{UserID: userID, GeneratedAt: s.now().UTC(), IDs: r.ids, UnconfirmedLinks: r.unconfirmed}
	if x.ClickHouse, err = s.Events.Export(ctx, r.ids); err != nil {
		return Export{}, err
	}
	if x.SegmentMemberships, err = s.Memberships.Memberships(ctx, r.ids); err != nil {
		return Export{}, err
	}
	if x.Configuration, err = s.Configuration.Mentions(ctx, r.ids); err != nil {
		return Export{}, err
	}
	if x.Erasures, err = s.Jobs.BySubject(ctx, subjects...); err != nil {
		return Export{}, err
	}
	if s.Audit != nil {
		confirmed, err := s.Subjects.All(ctx, r.confirmed)
		if err != nil {
			return Export{}, err
		}
		if err := s.Audit.RecordExport(ctx, actor, subjects[0], sortedValues(confirmed), len(r.unconfirmed)); err != nil {
			return Export{}, err
		}
	}
	if x.UnconfirmedLinks == nil {
		x.UnconfirmedLinks = []Link{}
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

// Links returns the ids linked to a user, for an operator to decide which to
// confirm: those export and erasure follow (trusted) and those they do not. It
// returns a derrors.BadRequest for an empty or too long id.
func (s *Service) Links(ctx context.Context, userID string) (followed []string, unconfirmed []Link, err error) {
	ids, err := s.ids(userID)
	if err != nil {
		return nil, nil, err
	}
	r, err := s.resolve(ctx, ids, nil)
	if err != nil {
		return nil, nil, err
	}
	return r.ids, r.unconfirmed, nil
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

// Job returns derrors.ErrNotFound if there is no such job.
func (s *Service) Job(ctx context.Context, id string) (Job, error) { return s.Jobs.Get(ctx, id) }

// List returns the newest jobs first, at most limit.
func (s *Service) List(ctx context.Context, limit int) ([]Job, error) { return s.Jobs.List(ctx, limit) }
