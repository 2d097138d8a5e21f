package chstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/chstore"
	"github.com/liftlab/lift/internal/testenv"
)

// TestPartitionDroppedAndMadeAgain: retention drops a month of exposures and a late
// exposure of that month makes the partition again before results are read. The
// partitions are then the same as before the drop, yet the dropped user must go.
func TestPartitionDroppedAndMadeAgain(t *testing.T) {
	t.Parallel()
	addr, db := testenv.ClickHouse(t)
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db, Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	store, err := chstore.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	q := experiments.MetricQuery{Experiment: "exp", Event: "purchase", Kind: "conversion", Window: 7 * 24 * time.Hour}
	exposure := func(user, variant string, ts time.Time) xrow {
		return xrow{uuid.New(), ts, user, "exp", variant, "", 0.5}
	}
	w := &world{}
	check := func(step string) {
		t.Helper()
		got, err := store.MetricAggregates(ctx, q, experiments.Overall)
		if err != nil {
			t.Fatal(err)
		}
		if diff := sameData(got, w.truth(t, q, experiments.Overall)); diff != "" {
			t.Fatalf("%s: %s", step, diff)
		}
	}
	w.insert(t, conn, []xrow{exposure("old", "b", time.Date(2026, 10, 10, 12, 0, 0, 0, time.UTC)),
		exposure("new", "a", time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC))}, nil)
	check("before the drop")
	for _, table := range []string{"exposures", "daily_exposures"} {
		if err := conn.Exec(ctx, "ALTER TABLE "+table+" DROP PARTITION 202610"); err != nil {
			t.Fatal(err)
		}
	}
	w.xs = slices.DeleteFunc(w.xs, func(x xrow) bool { return x.ts.Month() == time.October })
	w.insert(t, conn, []xrow{exposure("late", "control", time.Date(2026, 10, 20, 12, 0, 0, 0, time.UTC))}, nil)
	check("the month dropped and made again")
}
