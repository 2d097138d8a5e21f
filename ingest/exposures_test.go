package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/internal/testenv"
)

type fakePublisher struct {
	mu      sync.Mutex
	down    bool
	batches [][]ingest.Event
}

func (p *fakePublisher) Publish(_ context.Context, events []ingest.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return derrors.ErrUnavailable
	}
	p.batches = append(p.batches, append([]ingest.Event(nil), events...))
	return nil
}

func (p *fakePublisher) published() (n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.batches {
		n += len(b)
	}
	return n
}

func counter(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 4)
	c.Collect(ch)
	close(ch)
	var sum float64
	for m := range ch {
		var out dto.Metric
		if err := m.Write(&out); err != nil {
			t.Fatal(err)
		}
		sum += out.GetCounter().GetValue()
	}
	return sum
}

func TestExposureLog(t *testing.T) {
	pub := &fakePublisher{down: true}
	m := ingest.NewMetrics(prometheus.NewRegistry())
	l := ingest.NewExposureLog(pub, slog.New(slog.NewTextHandler(io.Discard, nil)), m, 10)
	l.BatchSize, l.BatchWait = 4, 10*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()

	// Broker down: Run holds one batch of 4 and retries; 10 more fill the buffer; the
	// rest are dropped and counted, and Log never blocks.
	start := time.Now()
	for i := range 30 {
		l.Log("u", ingest.Exposure{Experiment: "e", Variant: "v", AssignmentProbability: 0.5})
		if i == 3 {
			time.Sleep(50 * time.Millisecond) // let Run take the first batch
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Log blocked for %s", took)
	}
	dropped := counter(t, m.ExposuresDropped)
	if dropped < 10 {
		t.Errorf("dropped %v, want at least 10 counted", dropped)
	}
	pub.mu.Lock()
	pub.down = false
	pub.mu.Unlock()
	testenv.Poll(5*time.Second, func() bool { return pub.published()+int(dropped) >= 30 })
	if got := pub.published() + int(dropped); got != 30 {
		t.Errorf("published %d + dropped %v, want 30 in all", pub.published(), dropped)
	}
	for _, b := range pub.batches {
		if len(b) > 4 || b[0].Type != ingest.TypeExposure || b[0].Exposure == nil {
			t.Errorf("bad batch %+v", b)
		}
	}
	// What is buffered at shutdown is flushed.
	l.Log("u", ingest.Exposure{Experiment: "e", Variant: "v"})
	cancel()
	<-done
	if got := pub.published() + int(counter(t, m.ExposuresDropped)); got != 31 {
		t.Errorf("after shutdown: %d published or dropped, want 31", got)
	}
}
