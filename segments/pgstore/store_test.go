package pgstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/pgstore"
)

type set struct {
	mu sync.Mutex
	m  map[string]bool
}

func (s *set) Set(segment, user string, member bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[segment+"/"+user] = member
}

func (s *set) get(key string) (bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok
}

// Apply is idempotent, Follow sees every change (the initial rows and the ones that
// come later), and Stats counts members and recent movement.
func TestMembershipsAndFollow(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := pgstore.New(pool)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Now()
	enter := func(user string) segments.Change {
		return segments.Change{Kind: segments.Enter, UserID: user, Segment: "hi", At: now, Expiry: now.Add(time.Minute)}
	}
	for range 2 { // the engine re-emits changes after a restart
		if err := s.Apply(ctx, []segments.Change{enter("a"), enter("b")}); err != nil {
			t.Fatal(err)
		}
	}
	got := &set{m: map[string]bool{}}
	go s.Follow(ctx, url, got, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	wait := func(key string, want bool) {
		t.Helper()
		if !testenv.Poll(5*time.Second, func() bool { v, ok := got.get(key); return ok && v == want }) {
			t.Fatalf("%s never became %v", key, want)
		}
	}
	wait("hi/a", true)
	wait("hi/b", true)
	// Later changes arrive through NOTIFY (the poll interval is an hour here).
	if err := s.Apply(ctx, []segments.Change{{Kind: segments.Exit, UserID: "a", Segment: "hi", At: now}, enter("c")}); err != nil {
		t.Fatal(err)
	}
	wait("hi/a", false)
	wait("hi/c", true)
	st, err := s.Stats(ctx, "hi")
	if err != nil {
		t.Fatal(err)
	}
	if st.Members != 2 || st.EnteredHour != 2 || st.ExitedHour != 1 {
		t.Errorf("stats %+v, want 2 members, 2 entered and 1 exited in the last hour", st)
	}
}

// Several shards' engines write at once; a follower must still see every change
// (sequence numbers taken by one transaction and committed after a later one would
// be skipped by a follower reading "seq > last").
func TestFollowSeesConcurrentWriters(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := pgstore.New(pool)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := &set{m: map[string]bool{}}
	go s.Follow(ctx, url, got, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const writers, batches, perBatch = 4, 40, 5
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				var cs []segments.Change
				for i := range perBatch {
					cs = append(cs, segments.Change{Kind: segments.Enter, UserID: fmt.Sprintf("w%d-%d-%d", w, b, i),
						Segment: "hi", At: time.Now()})
				}
				if err := s.Apply(ctx, cs); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var n int
	if !testenv.Poll(10*time.Second, func() bool {
		got.mu.Lock()
		n = len(got.m)
		got.mu.Unlock()
		return n == writers*batches*perBatch
	}) {
		t.Fatalf("the follower saw %d of %d memberships", n, writers*batches*perBatch)
	}
}
