package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Endpoint is where and how one webhook's deliveries are sent.
type Endpoint struct {
	Key, URL, Secret string
}

// Delivery is one change waiting in the outbox for one webhook.
type Delivery struct {
	ID       int64
	Attempts int // failed attempts so far
	Change   Change
}

// Failure records a failed attempt at a delivery: retried at RetryAt, or dead.
type Failure struct {
	ID      int64
	RetryAt time.Time
	Dead    bool
}

// Store is the outbox the dispatcher drains (segments/pgstore implements it). Several
// dispatchers, in several processes, may share it: claims are leased.
type Store interface {
	// Due lists the webhooks with deliveries due now.
	Due(ctx context.Context) ([]string, error)
	// Claim leases up to limit due deliveries of a webhook, oldest first, for lease;
	// a claim that is neither Delivered nor Failed becomes due again after it.
	Claim(ctx context.Context, webhook string, limit int, lease time.Duration) (Endpoint, []Delivery, error)
	// Delivered removes deliveries from the outbox.
	Delivered(ctx context.Context, ids []int64) error
	// Failed counts an attempt at each delivery and schedules its retry or marks it dead.
	Failed(ctx context.Context, fails []Failure, reason string) error
	// Counts returns how many deliveries wait and how many are dead.
	Counts(ctx context.Context) (pending, dead int64, err error)
}

// Dispatcher delivers the outbox. Zero fields take the defaults.
type Dispatcher struct {
	Store Store
	// Guard decides which addresses deliveries may connect to; nil: public
	// addresses only. Redirects are never followed and no proxy is used (see
	// Guard.Client).
	Guard *Guard
	// Timeout bounds each request (default 10 s).
	Timeout time.Duration
	// MaxAttempts is how many failed attempts dead-letter a change (default 8).
	MaxAttempts int
	// Backoff is the delay before retry n (1-based) (default: 1 s doubling to at
	// most 10 minutes, ±20 % jitter so that many failures do not retry in step).
	Backoff func(n int) time.Duration
	// Poll is how often the outbox is checked for due deliveries (default 250 ms).
	Poll time.Duration
	// Batch is the most changes per request (default 100).
	Batch int
	// Lease is how long a claim is held (default 1 minute, longer than Timeout).
	Lease time.Duration
	Log   *slog.Logger
	// Metrics, if not nil, counts deliveries; see NewMetrics.
	Metrics *Metrics

	client *http.Client
}

// Metrics are the dispatcher's Prometheus metrics.
type Metrics struct {
	changes        *prometheus.CounterVec
	pending, dead  prometheus.Gauge
	requestSeconds prometheus.Histogram
}

// NewMetrics registers lift_segment_webhook_* metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lift_segment_webhook_changes_total",
			Help: "Segment changes by delivery outcome: delivered, failed (to be retried) or dead (dead-lettered).",
		}, []string{"outcome"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lift_segment_webhook_pending",
			Help: "Segment changes waiting in the webhook outbox.",
		}),
		dead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lift_segment_webhook_dead",
			Help: "Dead-lettered segment changes (GET /api/v1/webhooks/{key}/dead).",
		}),
		requestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lift_segment_webhook_request_seconds",
			Help:    "Duration of webhook requests.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
	}
	reg.MustRegister(m.changes, m.pending, m.dead, m.requestSeconds)
	return m
}

func (d *Dispatcher) defaults() {
	if d.Timeout == 0 {
		d.Timeout = 10 * time.Second
	}
	d.client = d.Guard.Client(d.Timeout)
	if d.MaxAttempts == 0 {
		d.MaxAttempts = 8
	}
	if d.Backoff == nil {
		d.Backoff = ExponentialBackoff(time.Second, 10*time.Minute)
	}
	if d.Poll == 0 {
		d.Poll = 250 * time.Millisecond
	}
	if d.Batch == 0 {
		d.Batch = 100
	}
	if d.Lease == 0 {
		d.Lease = time.Minute
	}
}

// ExponentialBackoff waits base·2^(n−1), at most ceiling, ±20 %.
func ExponentialBackoff(base, ceiling time.Duration) func(int) time.Duration {
	return func(n int) time.Duration {
		d := ceiling
		if n < 40 {
			d = min(base<<(n-1), ceiling)
		}
		return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	}
}

// Run delivers until ctx ends: each webhook with due deliveries is drained by its
// own goroutine, so a slow or failing receiver delays only itself.
func (d *Dispatcher) Run(ctx context.Context) {
	d.defaults()
	var (
		mu       sync.Mutex
		inFlight = map[string]bool{}
		wg       sync.WaitGroup
	)
	defer wg.Wait()
	tick := time.NewTicker(d.Poll)
	defer tick.Stop()
	var lastCount time.Time
	for {
		due, err := d.Store.Due(ctx)
		if err != nil && ctx.Err() == nil {
			d.Log.Warn("webhook outbox unavailable", "err", err)
		}
		for _, key := range due {
			mu.Lock()
			busy := inFlight[key]
			inFlight[key] = true
			mu.Unlock()
			if busy {
				continue
			}
			wg.Go(func() {
				d.drain(ctx, key)
				mu.Lock()
				delete(inFlight, key)
				mu.Unlock()
			})
		}
		if d.Metrics != nil && time.Since(lastCount) > 10*time.Second {
			if pending, dead, err := d.Store.Counts(ctx); err == nil {
				d.Metrics.pending.Set(float64(pending))
				d.Metrics.dead.Set(float64(dead))
				lastCount = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// drain delivers one webhook's due changes, batch after batch, until none is due or
// a batch fails (the rest waits for its retry time).
func (d *Dispatcher) drain(ctx context.Context, key string) {
	for ctx.Err() == nil {
		ep, batch, err := d.Store.Claim(ctx, key, d.Batch, d.Lease)
		if err != nil {
			if ctx.Err() == nil {
				d.Log.Warn("claiming webhook deliveries", "webhook", key, "err", err)
			}
			return
		}
		if len(batch) == 0 {
			return
		}
		if err := d.send(ctx, ep, batch); err != nil {
			d.failed(ctx, key, batch, err)
			return
		}
		ids := make([]int64, len(batch))
		for i, b := range batch {
			ids[i] = b.ID
		}
		// Should this fail, the lease runs out and the batch is sent again: at
		// least once.
		if err := d.Store.Delivered(context.WithoutCancel(ctx), ids); err != nil {
			d.Log.Warn("recording webhook deliveries", "webhook", key, "err", err)
			return
		}
		d.count("delivered", len(batch))
		if len(batch) < d.Batch {
			return
		}
	}
}

func (d *Dispatcher) failed(ctx context.Context, key string, batch []Delivery, cause error) {
	now := time.Now()
	fails := make([]Failure, len(batch))
	dead := 0
	for i, b := range batch {
		n := b.Attempts + 1
		fails[i] = Failure{ID: b.ID, Dead: n >= d.MaxAttempts, RetryAt: now.Add(d.Backoff(n))}
		if fails[i].Dead {
			dead++
		}
	}
	// The log gets the whole error; the outbox, which the API shows, only the reason.
	if err := d.Store.Failed(context.WithoutCancel(ctx), fails, Reason(cause)); err != nil {
		d.Log.Warn("recording a failed webhook delivery", "webhook", key, "err", err)
		return
	}
	d.count("failed", len(batch)-dead)
	d.count("dead", dead)
	if dead > 0 {
		d.Log.Error("webhook changes dead-lettered", "webhook", key, "changes", dead, "err", cause)
	} else {
		d.Log.Warn("webhook delivery failed; will retry", "webhook", key, "changes", len(batch), "err", cause)
	}
}

func (d *Dispatcher) count(outcome string, n int) {
	if d.Metrics != nil && n > 0 {
		d.Metrics.changes.WithLabelValues(outcome).Add(float64(n))
	}
}

// send POSTs one batch; any answer but 2xx is a failure, a redirect included.
func (d *Dispatcher) send(ctx context.Context, ep Endpoint, batch []Delivery) error {
	p := Payload{Webhook: ep.Key, Changes: make([]Change, len(batch))}
	for i, b := range batch {
		p.Changes[i] = b.Change
	}
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lift-webhooks/1")
	req.Header.Set(WebhookHeader, ep.Key)
	req.Header.Set(SignatureHeader, Sign(ep.Secret, time.Now(), body))
	start := time.Now()
	resp, err := d.client.Do(req)
	if d.Metrics != nil {
		d.Metrics.requestSeconds.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &statusError{code: resp.StatusCode, location: resp.Header.Get("Location")}
	}
	return nil
}

// statusError is a receiver's answer other than 2xx.
type statusError struct {
	code     int
	location string
}

func (e *statusError) Error() string {
	if e.code >= 300 && e.code <= 399 {
		return fmt.Sprintf("HTTP %d: redirect to %q not followed", e.code, e.location)
	}
	return fmt.Sprintf("HTTP %d", e.code)
}
