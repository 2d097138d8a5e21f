package chstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/ingest/gdpr/chstore"
	"github.com/liftlab/lift/ingest/gdpr/pgstore"
	"github.com/liftlab/lift/internal/testenv"
)

// The steps of an erasure job outside ClickHouse, done at once: their stores are
// tested in their own packages.
type forgetting struct{}

func (forgetting) RequestForget(context.Context, string, []string) error     { return nil }
func (forgetting) Forgotten(context.Context, string, []string) (bool, error) { return true, nil }

type noMemberships struct{}

func (noMemberships) EndMemberships(context.Context, []string) (int, error)    { return 0, nil }
func (noMemberships) DeleteMemberships(context.Context, []string) (int, error) { return 0, nil }
func (noMemberships) Memberships(context.Context, []string) ([]map[string]any, error) {
	return nil, nil
}

type noConfiguration struct{}

func (noConfiguration) ForgetInSavedGroups(context.Context, string, map[string]string) ([]string, error) {
	return nil, nil
}
func (noConfiguration) Mentions(context.Context, []string) ([]string, error) { return nil, nil }

// An erasure job carried by gdpr.Runner over this store, with its progress kept in
// Postgres, every pass as a freshly started lift (a new runner and a new store):
// the rows of alice and of anon-1, whom a server key linked to her (on the cluster
// alice on shard 1 and anon-1 on shard 2), are gone from every replica of every
// table, the other users' rows stay, and each mutation was started once.
func TestErasureJob(t *testing.T) {
	t.Parallel()
	onBoth(t, testErasureJob)
}

func testErasureJob(t *testing.T, st storage) {
	ctx := context.Background()
	s := setup(t, st)
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	jobs := pgstore.New(pool)
	subjects := &gdpr.Subjects{Key: jobs.SubjectKey}
	const ofErased = "SELECT count() FROM %s WHERE user_id IN ('alice', 'anon-1')"
	st.sync(t)
	if st.cluster != nil {
		alice := st.countEach(t, "SELECT count() FROM %s WHERE user_id = 'alice'", "events")
		anon := st.countEach(t, "SELECT count() FROM %s WHERE user_id = 'anon-1'", "events")
		if r := st.replicas(); alice[r[0]] == 0 || alice[r[2]] != 0 || anon[r[0]] != 0 || anon[r[2]] == 0 {
			t.Fatalf("events per node of alice %v and anon-1 %v: want them on shards 1 and 2", alice, anon)
		}
	}

	svc := &gdpr.Service{Jobs: jobs, Events: s, Subjects: subjects}
	job, _, err := svc.Request(ctx, "key:test", "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	pass := func() gdpr.Job {
		store, err := chstore.Open(st.addr, st.db)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		r := &gdpr.Runner{Jobs: jobs, Events: store, Segments: forgetting{}, Memberships: noMemberships{},
			Configuration: noConfiguration{}, Subjects: subjects, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			FollowGrace: time.Nanosecond}
		if err := r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		j, err := jobs.Get(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	if !testenv.Poll(2*time.Minute, func() bool { job = pass(); return job.Status == gdpr.StatusDone }) {
		t.Fatalf("the job did not finish: %+v", job)
	}
	step := job.Steps[3]
	if step.Name != gdpr.StepClickHouse || step.Round != 1 || !strings.Contains(step.Detail, "no row of the user left") || len(step.Tables) < 4 {
		t.Fatalf("ClickHouse step %+v", step)
	}

	st.sync(t)
	marker := fmt.Sprintf("lift-erasure:%s:1", job.ID)
	for _, tp := range step.Tables {
		if !tp.Done || tp.Mutation == "" || tp.Remaining != 0 {
			t.Errorf("table %+v", tp)
		}
		for r, n := range st.countEach(t, ofErased, tp.Table) {
			if n != 0 {
				t.Errorf("%s on %+v still holds %d rows of alice or anon-1", tp.Table, r, n)
			}
		}
		for r, n := range st.countEach(t, "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = '%s' "+
			"AND position(command, '"+marker+"') > 0", tp.Table) {
			if n != 1 {
				t.Errorf("%s on %+v lists %d mutations of the job, want 1", tp.Table, r, n)
			}
		}
	}
	if n := st.count(t, "SELECT count() FROM events WHERE user_id IN ('bob', 'erin', 'frank')"); n != 3 {
		t.Errorf("bob, erin and frank have %d events, want 3", n)
	}
}
