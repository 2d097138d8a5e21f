package ingest

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"
)

// ExposureLog takes exposures from the decision path without making it wait: Log only
// enqueues, and Run publishes them in batches. When the buffer is full (the broker is
// down or slower than decisions) an exposure is dropped, counted and logged, because
// blocking /v1/decide would turn a broker problem into a decision outage.
type ExposureLog struct {
	pub     Publisher
	log     *slog.Logger
	metrics *Metrics
	queue   chan pendingExposure

	// BatchSize and BatchWait bound how many exposures one publish carries and how
	// long one waits before it is published.
	BatchSize int
	BatchWait time.Duration
}

type pendingExposure struct {
	userID string
	at     time.Time
	x      Exposure
}

// NewExposureLog returns a log buffering up to buffer exposures.
func NewExposureLog(pub Publisher, log *slog.Logger, m *Metrics, buffer int) *ExposureLog {
	return &ExposureLog{pub: pub, log: log, metrics: m, queue: make(chan pendingExposure, buffer),
		BatchSize: 500, BatchWait: 100 * time.Millisecond}
}

// Buffered is how many exposures wait to be published.
func (l *ExposureLog) Buffered() int { return len(l.queue) }

// Log enqueues one exposure; it never blocks.
func (l *ExposureLog) Log(userID string, x Exposure) {
	select {
	case l.queue <- pendingExposure{userID: userID, at: time.Now(), x: x}:
	default:
		l.metrics.ExposuresDropped.WithLabelValues("buffer_full").Inc()
		// Debug level: under an outage this fires per decision; the counter is the signal.
		l.log.Debug("exposure dropped: buffer full", "experiment", x.Experiment, "variant", x.Variant)
	}
}

// Run publishes buffered exposures until ctx ends, retrying a failed batch with
// backoff (the buffer absorbs the wait), then tries once to flush what is left.
func (l *ExposureLog) Run(ctx context.Context) {
	batch := make([]Event, 0, l.BatchSize)
	timer := time.NewTimer(l.BatchWait)
	defer timer.Stop()
	for {
		select {
		case p := <-l.queue:
			batch = append(batch, exposureEvent(p))
			if len(batch) < l.BatchSize {
				continue
			}
		case <-timer.C:
			timer.Reset(l.BatchWait)
		case <-ctx.Done():
			l.drain(batch)
			return
		}
		if len(batch) == 0 {
			continue
		}
		if !l.publish(ctx, batch) {
			l.drain(batch)
			return
		}
		batch = batch[:0]
	}
}

// publish retries until the broker confirms the batch; false when ctx ended first.
func (l *ExposureLog) publish(ctx context.Context, batch []Event) bool {
	backoff := 100 * time.Millisecond
	for {
		err := l.pub.Publish(ctx, batch)
		if err == nil {
			l.metrics.ExposuresPublished.Add(float64(len(batch)))
			return true
		}
		if ctx.Err() != nil { // shutting down: drain takes over
			return false
		}
		l.log.Warn("publishing exposures failed; retrying", "err", err, "exposures", len(batch), "backoff", backoff)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// drain makes one bounded attempt to publish what is buffered at shutdown and counts
// whatever it could not.
func (l *ExposureLog) drain(batch []Event) {
	// Run is the only reader, so the length cannot shrink under us.
	for len(l.queue) > 0 {
		batch = append(batch, exposureEvent(<-l.queue))
	}
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.pub.Publish(ctx, batch); err != nil {
		l.metrics.ExposuresDropped.WithLabelValues("shutdown").Add(float64(len(batch)))
		l.log.Warn("exposures dropped at shutdown", "err", err, "exposures", len(batch))
		return
	}
	l.metrics.ExposuresPublished.Add(float64(len(batch)))
}

func exposureEvent(p pendingExposure) Event {
	props, _ := json.Marshal(p.x) // a struct of strings and a float: cannot fail
	x := p.x
	return Event{ID: NewID(), Type: TypeExposure, UserID: p.userID, Timestamp: p.at.UTC(),
		ReceivedAt: p.at.UTC(), Properties: props, Exposure: &x}
}
