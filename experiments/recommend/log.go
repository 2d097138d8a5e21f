package recommend

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/liftlab/lift/ingest"
)

// ImpressionLog publishes impressions ($recommendation events) without making
// /v1/recommend wait, like the exposure log: Log enqueues, Run publishes in batches,
// and when the buffer is full (the broker is down or slow) an impression is dropped
// and counted rather than holding up recommendations.
type ImpressionLog struct {
	pub     ingest.Publisher
	log     *slog.Logger
	queue   chan pending
	dropped atomic.Int64
}

type pending struct {
	userID string
	im     Impression
}

// NewImpressionLog returns a log buffering up to buffer impressions.
func NewImpressionLog(pub ingest.Publisher, log *slog.Logger, buffer int) *ImpressionLog {
	return &ImpressionLog{pub: pub, log: log, queue: make(chan pending, buffer)}
}

// Log enqueues an impression; it never blocks.
func (l *ImpressionLog) Log(userID string, im Impression) {
	select {
	case l.queue <- pending{userID, im}:
	default:
		l.dropped.Add(1)
	}
}

// Dropped is how many impressions were dropped because the buffer was full.
func (l *ImpressionLog) Dropped() int64 { return l.dropped.Load() }

// Run publishes buffered impressions every 100 ms (or 500 at a time) until ctx ends,
// then makes one bounded attempt to publish the rest.
func (l *ImpressionLog) Run(ctx context.Context) {
	var batch []ingest.Event
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	publish := func(ctx context.Context) {
		if len(batch) == 0 {
			return
		}
		if err := l.pub.Publish(ctx, batch); err != nil {
			l.dropped.Add(int64(len(batch)))
			l.log.Warn("recommendation impressions dropped", "err", err, "impressions", len(batch))
		}
		batch = batch[:0]
	}
	for {
		select {
		case p := <-l.queue:
			batch = append(batch, impressionEvent(p))
			if len(batch) >= 500 {
				publish(ctx)
			}
		case <-tick.C:
			publish(ctx)
		case <-ctx.Done():
			for len(l.queue) > 0 {
				batch = append(batch, impressionEvent(<-l.queue))
			}
			drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			publish(drain)
			cancel()
			return
		}
	}
}

func impressionEvent(p pending) ingest.Event {
	props, _ := json.Marshal(p.im) // strings, numbers and a list of strings: cannot fail
	at := p.im.At.UTC()
	return ingest.Event{ID: ingest.NewID(), Type: ingest.TypeRecommendation, UserID: p.userID, Timestamp: at,
		ReceivedAt: at, Properties: props}
}
