// Package gdpr erases and exports what lift stores about one user, and keeps the
// retention of stored events (docs/privacy.md).
//
// An erasure is a persisted job that a Runner carries through a fixed list of steps,
// saving its progress after every action, so that a restart of lift in the middle of
// a job resumes it where it stopped: ClickHouse mutations already started are found
// again (by a marker in their command) rather than started twice. The stores are
// reached through the small interfaces below; adapters live in gdpr/chstore
// (ClickHouse) and gdpr/pgstore (Postgres), the segment engine's part in
// segments/pgstore.
package gdpr

import (
	"context"
	"time"
)

// Status is where an erasure job is.
type Status string

// Job statuses.
const (
	StatusPending Status = "pending"
	StatusRunning Status = "running"
	StatusDone    Status = "done"
)

// Step names, in the order a job runs them.
const (
	// StepResolve adds the anonymous ids the user's $identify events link to, when
	// a trusted source sent the link (Link.Trusted); other links are only counted.
	StepResolve = "resolve"
	// StepSegmentEngine makes every segment engine shard forget the user's state
	// and save a checkpoint without it.
	StepSegmentEngine = "segment_engine"
	// StepMemberships ends the user's memberships (so that every decision process
	// drops them from memory) and then deletes them.
	StepMemberships = "memberships"
	// StepClickHouse deletes the user's rows from every ClickHouse table with a
	// user_id column and checks that none is left.
	StepClickHouse = "clickhouse"
	// StepWebhooks deletes the user's segment changes still waiting in the webhook
	// outbox, and its dead letters. It runs after the segment engine forgot the
	// user, which is what writes them.
	StepWebhooks = "webhook_outbox"
	// StepConfiguration removes the user from saved groups and lists the other
	// configuration documents that name them.
	StepConfiguration = "configuration"
)

// Steps is the order of the steps.
var Steps = []string{StepResolve, StepSegmentEngine, StepMemberships, StepClickHouse, StepWebhooks, StepConfiguration}

// Job is one erasure request and its progress.
type Job struct {
	ID string `json:"id"`
	// Subject identifies the user without naming them (Subjects). Jobs from
	// before lift had subjects keyed by a secret carry the pseudonym, or "sha256:"
	// and the SHA-256 of the id.
	Subject string `json:"subject"`
	// ConfirmedLinks are the subjects of the linked ids the operator confirmed
	// (Link): kept, like the audit log's record of the request, without the ids.
	ConfirmedLinks []string   `json:"confirmed_links,omitempty"`
	Status         Status     `json:"status"`
	Steps          []Step     `json:"steps"`
	RequestedBy    string     `json:"requested_by"`
	RequestedAt    time.Time  `json:"requested_at"`
	StartedAt      *time.Time `json:"started_at,omitempty"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
	// Error is the last error a step met; the runner retries it.
	Error string `json:"error,omitempty"`
	// UserIDs are the ids to erase. They are stored only while the job runs and
	// never shown.
	UserIDs []string `json:"-"`
}

// Step is one step's progress. Fields other than Name and Done are the step's own
// bookkeeping, saved so that it resumes after a restart.
type Step struct {
	Name   string `json:"name"`
	Done   bool   `json:"done"`
	Detail string `json:"detail,omitempty"`
	// Started is when the step's first action was taken.
	Started *time.Time `json:"started,omitempty"`
	// Tables is the ClickHouse step's progress per table.
	Tables []TableProgress `json:"tables,omitempty"`
	// Round counts the ClickHouse step's passes: another starts when rows of the
	// user arrived while the previous one ran.
	Round int `json:"round,omitempty"`
}

// TableProgress is the erasure of one ClickHouse table.
type TableProgress struct {
	Table    string `json:"table"`
	Mutation string `json:"mutation,omitempty"` // its mutation_id once started
	Done     bool   `json:"done"`
	// Remaining is the number of the user's rows found after the mutation.
	Remaining uint64 `json:"remaining"`
}

func (j *Job) step(name string) *Step {
	for i := range j.Steps {
		if j.Steps[i].Name == name {
			return &j.Steps[i]
		}
	}
	j.Steps = append(j.Steps, Step{Name: name})
	return &j.Steps[len(j.Steps)-1]
}

// Jobs persists erasure jobs.
type Jobs interface {
	// Create stores a new job and records the request in the audit log.
	Create(ctx context.Context, j Job) error
	// Get returns derrors.ErrNotFound if there is no such job.
	Get(ctx context.Context, id string) (Job, error)
	// List returns the newest jobs first, at most limit.
	List(ctx context.Context, limit int) ([]Job, error)
	// Open returns the jobs not done, oldest first, with their user ids.
	Open(ctx context.Context) ([]Job, error)
	// BySubject returns the jobs for any of the subjects (one user's, in the forms
	// lift has used), newest first.
	BySubject(ctx context.Context, subjects ...string) ([]Job, error)
	// Save stores a job's progress.
	Save(ctx context.Context, j Job) error
	// Finish marks the job done, forgets its user ids and records the completion
	// in the audit log.
	Finish(ctx context.Context, j Job) error
}

// Events is the ClickHouse side. Implementations never put a user id in a query's
// text (ClickHouse keeps mutation commands, and may log queries): they match rows by
// the SHA-256 of user_id.
type Events interface {
	// Tables lists the tables that have a user_id column and store rows.
	Tables(ctx context.Context) ([]string, error)
	// LinkedIDs returns the anonymous ids the users' $identify events link to,
	// with the sources of those events.
	LinkedIDs(ctx context.Context, userIDs []string) ([]Link, error)
	// StartDelete starts the mutation deleting the users' rows from table; marker
	// goes into the mutation's command so that FindMutation finds it again.
	StartDelete(ctx context.Context, table string, userIDs []string, marker string) error
	// FindMutation returns the id of the mutation carrying marker and whether it
	// is done; id is "" if there is none.
	FindMutation(ctx context.Context, table, marker string) (id string, done bool, err error)
	// Count counts the users' rows in table.
	Count(ctx context.Context, table string, userIDs []string) (uint64, error)
	// Export returns the users' rows of every table, by table.
	Export(ctx context.Context, userIDs []string) (map[string][]map[string]any, error)
}

// SegmentEngine is the behavioural segment engine's state: per-user windows kept in
// memory and in its checkpoints.
type SegmentEngine interface {
	// RequestForget asks every shard to forget the users.
	RequestForget(ctx context.Context, jobID string, userIDs []string) error
	// Forgotten reports whether every shard has saved a checkpoint without the
	// users. It may edit the checkpoint of a shard whose engine is not running.
	Forgotten(ctx context.Context, jobID string, userIDs []string) (bool, error)
}

// Memberships are the behavioural segment memberships decision processes follow.
type Memberships interface {
	// EndMemberships marks the users' memberships as ended, which every decision
	// process following them applies within a second.
	EndMemberships(ctx context.Context, userIDs []string) (int, error)
	// DeleteMemberships deletes the users' rows.
	DeleteMemberships(ctx context.Context, userIDs []string) (int, error)
	// Memberships returns the users' rows, for an export.
	Memberships(ctx context.Context, userIDs []string) ([]map[string]any, error)
}

// Webhooks is the outbox of segment changes for webhooks (segments/webhooks).
type Webhooks interface {
	// ForgetDeliveries deletes the users' changes still to deliver and their dead
	// letters, and returns how many of each.
	ForgetDeliveries(ctx context.Context, userIDs []string) (pending, dead int, err error)
}

// Configuration is where configuration documents name users: saved groups hold ids,
// conditions may compare with them.
type Configuration interface {
	// ForgetInSavedGroups removes the ids (the keys of subjects) from every saved
	// group, through the audited configuration store, and returns the groups
	// changed. The audit entry of each change names a removed id by its subject,
	// never as it was.
	ForgetInSavedGroups(ctx context.Context, actor string, subjects map[string]string) ([]string, error)
	// Mentions lists the documents that name any of the ids, as "kind/key".
	Mentions(ctx context.Context, userIDs []string) ([]string, error)
}

// AuditLog records what erasure and export do besides the jobs' own entries.
type AuditLog interface {
	// RecordExport records that actor exported the data of subject, following the
	// linked ids the operator confirmed (as subjects) and leaving unconfirmed
	// linked ids out.
	RecordExport(ctx context.Context, actor, subject string, confirmed []string, unconfirmed int) error
}
