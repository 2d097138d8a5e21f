package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/ingest/gdpr/pgstore"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/internal/testenv"
)

func setup(t *testing.T) (*pgstore.Store, *pgxpool.Pool) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pgstore.New(pool), pool
}

func TestJobs(t *testing.T) {
	t.Parallel()
	s, pool := setup(t)
	ctx := context.Background()
	j := gdpr.Job{ID: "0190-job", Subject: "lp_subject", Status: gdpr.StatusPending, RequestedBy: "key:ops",
		RequestedAt: time.Now().UTC().Truncate(time.Millisecond), UserIDs: []string{"alice", "lp_subject"},
		Steps: []gdpr.Step{{Name: gdpr.StepResolve}, {Name: gdpr.StepClickHouse}}}
	if err := s.Create(ctx, j); err != nil {
		t.Fatal(err)
	}
	open, err := s.Open(ctx)
	if err != nil || len(open) != 1 || strings.Join(open[0].UserIDs, ",") != "alice,lp_subject" {
		t.Fatalf("open %+v, %v", open, err)
	}
	j.Status = gdpr.StatusRunning
	j.Steps[1].Tables = []gdpr.TableProgress{{Table: "events", Mutation: "mutation_3.txt"}}
	if err := s.Save(ctx, j); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, j.ID)
	if err != nil || got.Status != gdpr.StatusRunning || got.Steps[1].Tables[0].Mutation != "mutation_3.txt" {
		t.Fatalf("after save: %+v, %v", got, err)
	}
	if err := s.Finish(ctx, got); err != nil {
		t.Fatal(err)
	}
	done, _ := s.Get(ctx, j.ID)
	if done.Status != gdpr.StatusDone || done.UserIDs != nil || done.FinishedAt == nil {
		t.Errorf("finished job %+v", done)
	}
	// A late save cannot reopen it.
	if err := s.Save(ctx, got); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Get(ctx, j.ID); again.Status != gdpr.StatusDone {
		t.Error("a save reopened a finished job")
	}
	if open, _ := s.Open(ctx); len(open) != 0 {
		t.Errorf("open after finish: %+v", open)
	}
	if by, _ := s.BySubject(ctx, "lp_subject"); len(by) != 1 {
		t.Errorf("by subject: %+v", by)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, derrors.ErrNotFound) {
		t.Errorf("missing job: %v", err)
	}
	// The audit log has the request and the completion, and never the ids.
	rows, err := pool.Query(ctx, "SELECT actor, action, after::text FROM audit_log WHERE entity = 'erasure' AND entity_key = $1 ORDER BY id", j.ID)
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for rows.Next() {
		var actor, action, after string
		if err := rows.Scan(&actor, &action, &after); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(after, "alice") {
			t.Errorf("audit names the user: %s", after)
		}
		entries = append(entries, actor+" "+action)
	}
	if strings.Join(entries, "; ") != "key:ops request; erasure:0190-job complete" {
		t.Errorf("audit entries %q", entries)
	}
}

// The installation's secret for subjects is made once and read back by everyone;
// confirmed links and exports are recorded by subject.
func TestSubjectKeyAndExportRecord(t *testing.T) {
	t.Parallel()
	s, pool := setup(t)
	ctx := context.Background()
	keys := make(chan []byte, 4)
	for range 4 { // processes starting together
		go func() {
			k, err := s.SubjectKey(ctx)
			if err != nil {
				t.Error(err)
			}
			keys <- k
		}()
	}
	first := <-keys
	for range 3 {
		if k := <-keys; !bytes.Equal(k, first) || len(k) != 32 {
			t.Errorf("keys differ: %x, %x", k, first)
		}
	}
	j := gdpr.Job{ID: "0190-linked", Subject: "sub_user", Status: gdpr.StatusPending, RequestedBy: "key:ops",
		RequestedAt: time.Now().UTC(), UserIDs: []string{"alice", "anon"}, ConfirmedLinks: []string{"sub_anon"}}
	if err := s.Create(ctx, j); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, j.ID); !slices.Equal(got.ConfirmedLinks, []string{"sub_anon"}) {
		t.Errorf("confirmed links %v", got.ConfirmedLinks)
	}
	if by, _ := s.BySubject(ctx, "lp_old", "sub_user"); len(by) != 1 {
		t.Errorf("by either subject: %+v", by)
	}
	if err := s.RecordExport(ctx, "user:dpo@x", "sub_user", []string{"sub_anon"}, 2); err != nil {
		t.Fatal(err)
	}
	var actor, after string
	if err := pool.QueryRow(ctx, "SELECT actor, after::text FROM audit_log WHERE entity = 'export' AND entity_key = 'sub_user'").Scan(&actor, &after); err != nil {
		t.Fatal(err)
	}
	if actor != "user:dpo@x" || after != `{"subject": "sub_user", "confirmed_links": ["sub_anon"], "unconfirmed_links": 2}` {
		t.Errorf("export audit %s %s", actor, after)
	}
	if err := pool.QueryRow(ctx, "SELECT after::text FROM audit_log WHERE entity = 'erasure' AND entity_key = $1", j.ID).Scan(&after); err != nil ||
		!strings.Contains(after, `"confirmed_links": ["sub_anon"]`) || strings.Contains(after, `"anon"`) {
		t.Errorf("request audit %s (%v)", after, err)
	}
}

func TestPolicies(t *testing.T) {
	t.Parallel()
	s, pool := setup(t)
	ctx := context.Background()
	for _, m := range []int{6, 24, 0} {
		if err := s.SetPolicy(ctx, "user:admin@x", "events", m); err != nil {
			t.Fatal(err)
		}
		p, err := s.Policies(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := p["events"]; m == 0 && ok || m != 0 && got != m {
			t.Errorf("after setting %d: %v", m, p)
		}
	}
	var audits int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM audit_log WHERE entity = 'retention' AND entity_key = 'events'").Scan(&audits); err != nil || audits != 3 {
		t.Errorf("%d audit entries (%v), want 3", audits, err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	if err := s.RecordDrop(ctx, gdpr.Drop{At: at, Table: "events", Partition: "202401", Newest: at.AddDate(-2, 0, 0), Rows: 7}); err != nil {
		t.Fatal(err)
	}
	drops, err := s.Drops(ctx, 10)
	if err != nil || len(drops) != 1 || drops[0].Rows != 7 || drops[0].Partition != "202401" {
		t.Errorf("drops %+v, %v", drops, err)
	}
}
