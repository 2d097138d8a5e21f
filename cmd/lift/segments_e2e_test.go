package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/internal/testenv"
)

// TestHighIntentEndToEnd is the behavioural segment of the issue on the real services:
// three product views within 10 minutes put a user in High Intent, and /v1/decide
// serves the segment's offer within a second of the third view being accepted.
func TestHighIntentEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the real pipeline")
	}
	f := newFixture(t)
	f.env["LIFT_SEGMENT_REBUILD_DELAY"] = "1s"
	f.start(t)
	f.server.want(201, "POST", "/api/v1/segments", `{"key":"high-intent","kind":"behavioral",
		"rule":{"event":"product_view","count_gte":3,"within":"10m"},"ttl":"5m"}`, nil)
	f.server.want(201, "POST", "/api/v1/flags", `{"key":"offer","type":"string","default":"none",
		"rules":[{"segment":"high-intent","value":"discount","variant":"high-intent"}]}`, nil)
	offer := func(user string) string {
		var r decideResp
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"`+user+`","keys":["offer"]}`, &r)
		return string(r.Decisions["offer"].Value)
	}
	view := func(user string, at time.Time) {
		body := fmt.Sprintf(`{"events":[{"type":"product_view","user_id":%q,"timestamp":%q,"properties":{"sku":"x"}}]}`,
			user, at.UTC().Format(time.RFC3339Nano))
		var got struct{ Accepted int }
		f.client.want(202, "POST", "/v1/events", body, &got)
		if got.Accepted != 1 {
			t.Fatalf("view of %s not accepted", user)
		}
	}
	// A new segment is picked up within a second and rebuilt from ClickHouse (here
	// after LIFT_SEGMENT_REBUILD_DELAY, 1 s; the checkpoints record the definitions
	// each shard runs and what it is still rebuilding): wait for that, then for a
	// first user to qualify before measuring.
	pool, err := pgxpool.New(context.Background(), f.env["LIFT_POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	waitEngineRuns(t, pool, 4, "high-intent")
	testenv.Eventually(t, 10*time.Second, "no offer for the probe", func() bool { return offer("probe") == `"none"` })
	for range 3 {
		view("warm-up", time.Now())
	}
	testenv.Eventually(t, 15*time.Second, "the discount offer for warm-up", func() bool { return offer("warm-up") == `"discount"` })

	const users = 100
	latencies := make([]time.Duration, users)
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < users; i += 10 {
				user := fmt.Sprintf("shopper-%d", i)
				view(user, time.Now())
				view(user, time.Now())
				if got := offer(user); got != `"none"` {
					t.Errorf("%s got %s after two views", user, got)
				}
				view(user, time.Now())
				accepted := time.Now()
				for offer(user) != `"discount"` {
					if time.Since(accepted) > 10*time.Second {
						t.Errorf("%s: not in High Intent 10 s after the third view", user)
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
				latencies[i] = time.Since(accepted)
			}
		}()
	}
	// Users who must not qualify: two views; three views stamped 30 minutes ago
	// (older than the engine's lateness, so they are ignored).
	view("two-views", time.Now())
	view("two-views", time.Now())
	old := time.Now().Add(-30 * time.Minute)
	for i := range 3 {
		view("old-views", old.Add(time.Duration(i)*time.Minute))
	}
	wg.Wait()
	slices.Sort(latencies)
	p50, p99 := latencies[users/2], latencies[users*99/100]
	t.Logf("third view accepted → /v1/decide serves the segment: p50 %v, p99 %v, max %v over %d users",
		p50, p99, latencies[users-1], users)
	// The goal is 1 s; the figure is reported, not asserted: the machine the suite
	// runs on is shared and its timings are noise (docs/segments.md has the
	// measurements).
	var stats struct {
		Members int64
		Entered int64 `json:"entered_last_hour"`
	}
	f.server.want(200, "GET", "/api/v1/segments/high-intent/stats", "", &stats)
	if stats.Members != users+1 || stats.Entered != users+1 {
		t.Errorf("segment stats %+v, want %d members and entries (the users and the warm-up)", stats, users+1)
	}
	// By now every event sent before them has been processed.
	for _, user := range []string{"two-views", "old-views"} {
		if got := offer(user); got != `"none"` {
			t.Errorf("%s is in High Intent (%s)", user, got)
		}
	}
}

// waitEngineRuns waits until each of the segment engine's shards runs the segments
// with these keys (the checkpoints name them: "key1,key2@<digest>") and has rebuilt them.
func waitEngineRuns(t testing.TB, pool *pgxpool.Pool, shards int, keys ...string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "the engine to run the segments on every shard", func() bool {
		rows, err := pool.Query(context.Background(), "SELECT definitions FROM segment_checkpoints")
		if err != nil {
			return false
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var d string
			_ = rows.Scan(&d)
			names, _, _ := strings.Cut(d, " ")
			i := strings.LastIndex(names, "@")
			if i < 0 || strings.Contains(d, "rebuilding") {
				return false
			}
			running := strings.Split(names[:i], ",")
			for _, k := range keys {
				if !slices.Contains(running, k) {
					return false
				}
			}
			n++
		}
		return n == shards
	})
}
