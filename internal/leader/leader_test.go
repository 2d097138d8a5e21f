package leader_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/leader"
	"github.com/liftlab/lift/internal/testenv"
)

// Two processes contend for one lock: exactly one leads; when it goes away the other
// takes over.
func TestElection(t *testing.T) {
	url := testenv.Postgres(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var leading atomic.Int32
	var leads [2]atomic.Int32
	run := func(ctx context.Context, i int) {
		e := &leader.Elector{ConnString: url, Name: "test", Log: log, Retry: 100 * time.Millisecond}
		e.Run(ctx, func(ctx context.Context) {
			if leading.Add(1) != 1 {
				t.Error("two leaders at once")
			}
			leads[i].Add(1)
			<-ctx.Done()
			leading.Add(-1)
		})
	}
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneA := make(chan struct{})
	go func() { run(ctxA, 0); close(doneA) }()
	testenv.Eventually(t, 10*time.Second, "the first candidate to lead", func() bool { return leads[0].Load() == 1 })
	go run(ctxB, 1)
	time.Sleep(500 * time.Millisecond) // B tries several times and must not win
	if leads[1].Load() != 0 {
		t.Fatal("the follower led while the leader was alive")
	}
	stopA()
	<-doneA
	start := time.Now()
	testenv.Eventually(t, 10*time.Second, "the second candidate to take over", func() bool { return leads[1].Load() == 1 })
	t.Logf("takeover after %v", time.Since(start))
}
