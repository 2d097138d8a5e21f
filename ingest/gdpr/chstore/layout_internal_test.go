package chstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/chconn"
	"github.com/liftlab/lift/internal/testenv"
)

// A replica that cannot be reached: FindMutation, Count and ExpireRows return an
// error naming it (the runner and retention retry later) rather than report an
// erasure done or start a mutation. The test gives the single server's shard a second
// replica at an address where nothing listens.
func TestUnreachableReplica(t *testing.T) {
	t.Parallel()
	addr, db := testenv.ClickHouse(t)
	s, err := Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const marker = "lift-erasure:job-x:1"
	if err := s.StartDelete(ctx, "events", []string{"nobody"}, marker); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "the mutation to be done", func() bool {
		_, done, err := s.FindMutation(ctx, "events", marker)
		return err == nil && done
	})

	l, err := s.layout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const nowhere = "127.0.0.1:1"
	dead, err := chconn.Open(nowhere, db, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l.replicaConns = append(l.replicaConns, dead)
	l.shards[0].replicas = append(l.shards[0].replicas, replica{addr: nowhere, conn: dead})

	if id, done, err := s.FindMutation(ctx, "events", marker); err == nil || done || !strings.Contains(err.Error(), nowhere) {
		t.Errorf("FindMutation with a replica down: %q, done %v, %v", id, done, err)
	}
	if n, err := s.Count(ctx, "events", []string{"nobody"}); err == nil || !strings.Contains(err.Error(), nowhere) {
		t.Errorf("Count with a replica down: %d, %v", n, err)
	}
	if n, err := s.ExpireRows(ctx, "first_exposures", time.Now()); err == nil || !strings.Contains(err.Error(), nowhere) {
		t.Errorf("ExpireRows with a replica down: %d, %v", n, err)
	}
}
