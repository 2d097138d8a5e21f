package gdpr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/internal/derrors"
)

// The runner's bookkeeping against in-memory stand-ins for the stores (the real
// stores are tested against the real services in their packages and in cmd/lift).

type memJobs struct{ jobs map[string]gdpr.Job }

func (m *memJobs) Create(_ context.Context, j gdpr.Job) error { m.jobs[j.ID] = j; return nil }
func (m *memJobs) Get(_ context.Context, id string) (gdpr.Job, error) {
	j, ok := m.jobs[id]
	if !ok {
		return j, derrors.ErrNotFound
	}
	return j, nil
}
func (m *memJobs) List(context.Context, int) ([]gdpr.Job, error) { return nil, nil }
func (m *memJobs) Open(context.Context) ([]gdpr.Job, error) {
	var out []gdpr.Job
	for _, j := range m.jobs {
		if j.Status != gdpr.StatusDone {
			j.Steps = slices.Clone(j.Steps)
			out = append(out, j)
		}
	}
	return out, nil
}
func (m *memJobs) BySubject(_ context.Context, subjects ...string) ([]gdpr.Job, error) {
	var out []gdpr.Job
	for _, j := range m.jobs {
		if slices.Contains(subjects, j.Subject) {
			out = append(out, j)
		}
	}
	return out, nil
}
func (m *memJobs) Save(_ context.Context, j gdpr.Job) error {
	j.Steps = slices.Clone(j.Steps)
	m.jobs[j.ID] = j
	return nil
}
func (m *memJobs) Finish(_ context.Context, j gdpr.Job) error {
	j.UserIDs = nil
	m.jobs[j.ID] = j
	return nil
}

// memEvents: each table holds rows per user; a mutation completes on the next
// FindMutation after it started; late rows arrive once, after the first round.
type memEvents struct {
	rows      map[string]map[string]int // table → user → rows
	mutations map[string]bool           // table+marker → done
	started   []string
	late      map[string]string // table → user whose row arrives during round 1
	fail      error
}

func (m *memEvents) Tables(context.Context) ([]string, error) {
	var ts []string
	for t := range m.rows {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts, m.fail
}

// LinkedIDs: a backend linked anon to alice; a client key linked forged to her.
func (m *memEvents) LinkedIDs(_ context.Context, ids []string) ([]gdpr.Link, error) {
	if slices.Contains(ids, "alice") {
		return []gdpr.Link{{ID: "anon", Sources: []string{"amqp"}}, {ID: "forged", Sources: []string{"client", "unknown"}}}, nil
	}
	return nil, nil
}
func (m *memEvents) StartDelete(_ context.Context, table string, ids []string, marker string) error {
	m.started = append(m.started, table+" "+marker)
	for _, id := range ids {
		delete(m.rows[table], id)
	}
	m.mutations[table+marker] = false
	if u, ok := m.late[table]; ok {
		m.rows[table][u]++ // arrives while the mutation runs
		delete(m.late, table)
	}
	return nil
}
func (m *memEvents) FindMutation(_ context.Context, table, marker string) (string, bool, error) {
	done, ok := m.mutations[table+marker]
	if !ok {
		return "", false, nil
	}
	m.mutations[table+marker] = true
	return "mutation_" + table, done, nil
}
func (m *memEvents) Count(_ context.Context, table string, ids []string) (uint64, error) {
	n := 0
	for _, id := range ids {
		n += m.rows[table][id]
	}
	return uint64(n), nil
}
func (m *memEvents) Export(context.Context, []string) (map[string][]map[string]any, error) {
	return nil, nil
}

type memSegments struct{ polls int }

func (m *memSegments) RequestForget(context.Context, string, []string) error { return nil }
func (m *memSegments) Forgotten(context.Context, string, []string) (bool, error) {
	m.polls++
	return m.polls >= 2, nil
}

type memMembers struct{ ended, deleted int }

func (m *memMembers) EndMemberships(context.Context, []string) (int, error) { m.ended++; return 1, nil }
func (m *memMembers) DeleteMemberships(context.Context, []string) (int, error) {
	m.deleted++
	return 1, nil
}
func (m *memMembers) Memberships(context.Context, []string) ([]map[string]any, error) {
	return nil, nil
}

type memConfig struct{ subjects map[string]string }

func (m *memConfig) ForgetInSavedGroups(_ context.Context, _ string, subjects map[string]string) ([]string, error) {
	m.subjects = subjects
	return []string{"beta"}, nil
}
func (*memConfig) Mentions(context.Context, []string) ([]string, error) {
	return []string{"flag/x"}, nil
}

type memWebhooks struct{ forgot []string }

func (m *memWebhooks) ForgetDeliveries(_ context.Context, ids []string) (int, int, error) {
	m.forgot = append(m.forgot, ids...)
	return 2, 1, nil
}

func testSubjects() *gdpr.Subjects {
	return &gdpr.Subjects{Key: func(context.Context) ([]byte, error) { return []byte("a secret of at least 32 bytes...."), nil }}
}

func TestRunner(t *testing.T) {
	ctx := context.Background()
	jobs := &memJobs{jobs: map[string]gdpr.Job{}}
	events := &memEvents{
		rows: map[string]map[string]int{
			"events": {"alice": 2, "anon": 1, "forged": 4, "bob": 3}, "exposures": {"alice": 1, "bob": 1},
		},
		mutations: map[string]bool{},
		late:      map[string]string{"events": "alice"},
	}
	members := &memMembers{}
	config := &memConfig{}
	hooks := &memWebhooks{}
	svc := &gdpr.Service{Jobs: jobs, Events: events, Memberships: members, Configuration: config, Subjects: testSubjects()}
	j, unconfirmed, err := svc.Request(ctx, "key:test", "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []gdpr.Link{{ID: "forged", Sources: []string{"client", "unknown"}}}; !slices.EqualFunc(unconfirmed, want, linkEqual) {
		t.Errorf("unconfirmed links %v, want %v", unconfirmed, want)
	}
	if again, _, _ := svc.Request(ctx, "key:test", "alice", nil); again.ID != j.ID {
		t.Error("second request opened another job")
	}
	var ve *derrors.ValidationError
	if _, _, err := svc.Request(ctx, "key:test", "", nil); !errors.As(err, &ve) {
		t.Errorf("empty id: %v", err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &gdpr.Runner{Jobs: jobs, Events: events, Segments: &memSegments{}, Memberships: members, Webhooks: hooks,
		Configuration: config, Subjects: testSubjects(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}

	var passes int
	for passes = 1; passes < 50; passes++ {
		// A new runner every pass: as if lift restarted between any two of them.
		r := *r
		if err := r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
		if got, _ := jobs.Get(ctx, j.ID); got.Status == gdpr.StatusDone {
			break
		}
	}
	got, _ := jobs.Get(ctx, j.ID)
	if got.Status != gdpr.StatusDone || got.UserIDs != nil || got.FinishedAt == nil {
		t.Fatalf("after %d passes: %+v", passes, got)
	}
	// The link a backend made is followed; the one a client key made is not.
	if events.rows["events"]["alice"]+events.rows["events"]["anon"]+events.rows["exposures"]["alice"] != 0 ||
		events.rows["events"]["bob"] != 3 || events.rows["exposures"]["bob"] != 1 || events.rows["events"]["forged"] != 4 {
		t.Errorf("rows left %v", events.rows)
	}
	if !slices.Equal(hooks.forgot, []string{"alice", "anon"}) {
		t.Errorf("webhook outbox forgot %v", hooks.forgot)
	}
	// Saved groups' audit entries get keyed digests, never the ids.
	for id, sub := range config.subjects {
		if !strings.HasPrefix(sub, gdpr.SubjectPrefix) || strings.Contains(sub, id) {
			t.Errorf("subject of %q: %q", id, sub)
		}
	}
	if len(config.subjects) != 2 || config.subjects["alice"] == config.subjects["anon"] {
		t.Errorf("subjects %v", config.subjects)
	}
	resolve := got.Steps[0]
	if !strings.Contains(resolve.Detail, "1 linked ids not followed") {
		t.Errorf("resolve step: %s", resolve.Detail)
	}
	// Round 1 on both tables, round 2 on events for the row that arrived late;
	// never one started twice.
	want := []string{
		"events lift-erasure:" + j.ID + ":1", "exposures lift-erasure:" + j.ID + ":1", "events lift-erasure:" + j.ID + ":2",
	}
	if !slices.Equal(events.started, want) {
		t.Errorf("mutations started:\n%s\nwant\n%s", strings.Join(events.started, "\n"), strings.Join(want, "\n"))
	}
	if members.ended != 1 || members.deleted != 1 {
		t.Errorf("memberships ended %d times, deleted %d times", members.ended, members.deleted)
	}
	for _, st := range got.Steps {
		if !st.Done {
			t.Errorf("step %s not done", st.Name)
		}
	}
	cfg := got.Steps[len(got.Steps)-1]
	if !strings.Contains(cfg.Detail, "beta") || !strings.Contains(cfg.Detail, "flag/x") {
		t.Errorf("configuration step: %s", cfg.Detail)
	}
}

// A failing store leaves the job running with the error shown, and it carries on
// once the store is back.
func TestRunnerRetries(t *testing.T) {
	ctx := context.Background()
	jobs := &memJobs{jobs: map[string]gdpr.Job{}}
	events := &memEvents{rows: map[string]map[string]int{"events": {"u": 1}}, mutations: map[string]bool{}, fail: fmt.Errorf("clickhouse down")}
	svc := &gdpr.Service{Jobs: jobs, Events: &memEvents{}, Subjects: testSubjects()}
	j, _, err := svc.Request(ctx, "key:test", "u", nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r := &gdpr.Runner{Jobs: jobs, Events: events, Segments: &memSegments{polls: 5}, Memberships: &memMembers{},
		Configuration: &memConfig{}, Subjects: testSubjects(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
	for range 5 {
		_ = r.RunOnce(ctx)
		now = now.Add(2 * time.Second)
	}
	got, _ := jobs.Get(ctx, j.ID)
	if got.Status != gdpr.StatusRunning || !strings.Contains(got.Error, "clickhouse down") {
		t.Fatalf("while ClickHouse is down: %+v", got)
	}
	events.fail = nil
	for range 10 {
		_ = r.RunOnce(ctx)
		now = now.Add(2 * time.Second)
	}
	if got, _ := jobs.Get(ctx, j.ID); got.Status != gdpr.StatusDone || got.Error != "" {
		t.Errorf("after ClickHouse is back: %+v", got)
	}
}

func linkEqual(a, b gdpr.Link) bool { return a.ID == b.ID && slices.Equal(a.Sources, b.Sources) }

// Linked ids a client key made are followed only when the operator confirms them
// (include), which must name a linked id; the job keeps them by subject.
func TestRequestConfirmedLinks(t *testing.T) {
	ctx := context.Background()
	jobs := &memJobs{jobs: map[string]gdpr.Job{}}
	svc := &gdpr.Service{Jobs: jobs, Events: &memEvents{}, Subjects: testSubjects()}
	var ve *derrors.ValidationError
	if _, _, err := svc.Request(ctx, "key:test", "alice", []string{"bob"}); !errors.As(err, &ve) || ve.Fields[0].Field != "include" {
		t.Errorf("include of an id not linked: %v", err)
	}
	j, unconfirmed, err := svc.Request(ctx, "key:test", "alice", []string{"forged"})
	if err != nil {
		t.Fatal(err)
	}
	if len(unconfirmed) != 0 || !slices.Contains(j.UserIDs, "forged") || !slices.Contains(j.UserIDs, "anon") {
		t.Errorf("job ids %v, unconfirmed %v", j.UserIDs, unconfirmed)
	}
	forged, _ := testSubjects().Of(ctx, "forged")
	if !slices.Equal(j.ConfirmedLinks, []string{forged}) {
		t.Errorf("confirmed links %v, want [%s]", j.ConfirmedLinks, forged)
	}
	// The open job already covers it; a job without it cannot take it on.
	if again, _, err := svc.Request(ctx, "key:test", "alice", []string{"forged"}); err != nil || again.ID != j.ID {
		t.Errorf("same request again: %v, %v", again.ID, err)
	}
	j.UserIDs = []string{"alice"}
	jobs.jobs[j.ID] = j
	var conflict *derrors.ConflictError
	if _, _, err := svc.Request(ctx, "key:test", "alice", []string{"forged"}); !errors.As(err, &conflict) {
		t.Errorf("confirming a link into an open job without it: %v", err)
	}
}
