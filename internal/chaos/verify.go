package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

// Stored waits (up to limit) until ClickHouse holds every acknowledged event of the
// database's events table, then counts: stored and lost among the acknowledged ids,
// rows beyond one per event id with FINAL (what analysts see) and without it. It
// returns the figures and when the last acknowledged event became visible.
func Stored(t testing.TB, addr, db string, acked []string, limit time.Duration) (Figures, time.Time) {
	t.Helper()
	ch := migrations.OpenClickHouse(addr, db)
	defer ch.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit+time.Minute)
	defer cancel()
	count := func(q string) int {
		var n uint64
		if err := ch.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Logf("chaos: %s: %v", q, err)
			return -1
		}
		return int(n)
	}
	want := map[string]bool{}
	for _, id := range acked {
		want[id] = true
	}
	caughtUp := time.Time{}
	if testenv.Poll(limit, func() bool { return count("SELECT uniqExact(event_id) FROM events") >= len(want) }) {
		caughtUp = time.Now()
	}
	f := Figures{Accepted: len(want)}
	rows, err := ch.QueryContext(ctx, "SELECT toString(event_id) FROM events FINAL")
	if err != nil {
		t.Fatalf("chaos: read event ids: %v", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			f.Duplicated++
		}
		seen[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if seen[id] {
			f.Stored++
		} else {
			f.Lost++
		}
	}
	f.RawDups = count("SELECT count() - uniqExact(event_id) FROM events")
	return f, caughtUp
}
