package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/pgstore"
	"github.com/liftlab/lift/segments/webhooks"
)

// receiver is a real HTTP endpoint that verifies signatures, fails while failing is
// set, and records the change ids it accepted.
type receiver struct {
	t       *testing.T
	secret  string
	failing atomic.Bool
	calls   atomic.Int64
	mu      sync.Mutex
	got     map[string]int // change id → deliveries accepted
	kinds   map[string]string
}

func newReceiver(t *testing.T, secret string) (*receiver, *httptest.Server) {
	r := &receiver{t: t, secret: secret, got: map[string]int{}, kinds: map[string]string{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.calls.Add(1)
	body, _ := io.ReadAll(req.Body)
	if err := webhooks.Verify(r.secret, req.Header.Get(webhooks.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		r.t.Errorf("delivery with a bad signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.failing.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var p webhooks.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		r.t.Errorf("undecodable delivery %s: %v", body, err)
	}
	r.mu.Lock()
	for _, c := range p.Changes {
		r.got[c.ID]++
		r.kinds[c.UserID+"/"+c.Type] = c.Segment
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// allowLoopback lets webhooks reach the test receivers, httptest servers on
// 127.0.0.1, which lift refuses by default.
var allowLoopback = &webhooks.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}

func fastDispatcher(s *pgstore.Store, attempts int) *webhooks.Dispatcher {
	return &webhooks.Dispatcher{Store: s.Outbox(), Guard: allowLoopback, MaxAttempts: attempts, Poll: 20 * time.Millisecond,
		Backoff: webhooks.ExponentialBackoff(20*time.Millisecond, 200*time.Millisecond),
		Batch:   50, Lease: 5 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// A receiver that fails for a while gets every change once it recovers, signed;
// memberships are stored at once meanwhile; the outbox survives a restart (a new
// dispatcher on a new pool); changes replayed by a restarted engine are not sent
// again; previews are never sent.
func TestWebhooksRetryUntilDelivered(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := pgstore.New(pool)
	s.WebhookGuard = allowLoopback
	ctx := context.Background()
	const secret = "a-secret-of-more-than-16"
	recv, srv := newReceiver(t, secret)
	recv.failing.Store(true)
	if _, err := s.CreateWebhook(ctx, "test", webhooks.Webhook{Key: "crm", URL: srv.URL, Secret: secret, Segments: []string{"hi"}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Millisecond)
	var changes []segments.Change
	for i := range 120 {
		changes = append(changes, segments.Change{Kind: segments.Enter, UserID: fmt.Sprint("u", i), Segment: "hi", At: now, Expiry: now.Add(time.Minute)})
	}
	changes = append(changes,
		segments.Change{Kind: segments.Exit, UserID: "u0", Segment: "hi", At: now.Add(time.Second)},
		segments.Change{Kind: segments.Enter, UserID: "u0", Segment: "other", At: now},    // not subscribed
		segments.Change{Kind: segments.Enter, UserID: "u0", Segment: "hi@draft", At: now}, // a preview
	)
	if err := s.Apply(ctx, changes); err != nil {
		t.Fatal(err)
	}
	// Replayed after a restart: already recorded, so not queued again.
	if err := s.Apply(ctx, changes[1:121]); err != nil {
		t.Fatal(err)
	}
	// The memberships did not wait for the receiver.
	if st, err := s.Stats(ctx, "hi"); err != nil || st.Members != 119 {
		t.Fatalf("stats %+v, %v: want 119 members stored while the receiver fails", st, err)
	}

	first := fastDispatcher(s, 1000)
	ctxA, stopA := context.WithCancel(ctx)
	doneA := make(chan struct{})
	go func() { first.Run(ctxA); close(doneA) }()
	testenv.Eventually(t, 30*time.Second, "five calls to the receiver", func() bool { return recv.calls.Load() >= 5 })
	stopA() // lift stops while the receiver is still failing
	<-doneA
	if pending, _, err := s.Outbox().Counts(ctx); err != nil || pending != 121 {
		t.Fatalf("outbox after the first process: %d pending (%v), want 121", pending, err)
	}

	// A new process, a new pool: the outbox is in Postgres.
	pool2, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool2.Close)
	s2 := pgstore.New(pool2)
	ctxB, stopB := context.WithCancel(ctx)
	defer stopB()
	go fastDispatcher(s2, 1000).Run(ctxB)
	time.Sleep(100 * time.Millisecond)
	recv.failing.Store(false)
	testenv.Eventually(t, 30*time.Second, "no pending change", func() bool {
		pending, _, _ := s2.Outbox().Counts(ctx)
		return pending == 0
	})
	if n := recv.distinct(); n != 121 {
		t.Fatalf("receiver got %d distinct changes, want 121 (120 enters and an exit)", n)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.kinds["u0/exit"] != "hi" || recv.kinds["u0/enter"] != "hi" {
		t.Errorf("u0's enter and exit of hi not both delivered: %v", recv.kinds)
	}
	t.Logf("%d requests for 121 changes", recv.calls.Load())
}

// After MaxAttempts a change is dead: listed with its last error, counted, and
// delivered after Redeliver once the receiver works again.
func TestWebhooksDeadLetter(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := pgstore.New(pool)
	s.WebhookGuard = allowLoopback
	ctx := context.Background()
	created, err := s.CreateWebhook(ctx, "test", webhooks.Webhook{Key: "cdp", URL: "http://127.0.0.1:1/unused"})
	if err != nil {
		t.Fatal(err)
	}
	if len(created.Secret) < webhooks.MinSecretLength {
		t.Fatalf("generated secret %q", created.Secret)
	}
	recv, srv := newReceiver(t, created.Secret)
	recv.failing.Store(true)
	if _, err := s.UpdateWebhook(ctx, "test", "cdp", webhooks.Webhook{URL: srv.URL}); err != nil {
		t.Fatal(err)
	}
	if w, err := s.GetWebhook(ctx, "cdp"); err != nil || w.Secret != "" || w.URL != srv.URL {
		t.Fatalf("GetWebhook = %+v, %v: want the new URL and no secret", w, err)
	}
	now := time.Now().Truncate(time.Millisecond)
	if err := s.Apply(ctx, []segments.Change{{Kind: segments.Enter, UserID: "u1", Segment: "any", At: now}}); err != nil {
		t.Fatal(err)
	}
	run, stop := context.WithCancel(ctx)
	defer stop()
	go fastDispatcher(s, 3).Run(run)
	testenv.Eventually(t, 30*time.Second, "one dead letter", func() bool {
		_, dead, _ := s.Outbox().Counts(ctx)
		return dead == 1
	})
	if n := recv.calls.Load(); n != 3 {
		t.Errorf("%d attempts before the dead letter, want 3", n)
	}
	dls, err := s.DeadLetters(ctx, "cdp", 10)
	if err != nil || len(dls) != 1 {
		t.Fatalf("DeadLetters = %+v, %v", dls, err)
	}
	if d := dls[0]; d.Attempts != 3 || d.Change.UserID != "u1" || d.Change.Type != "enter" || d.LastError == "" ||
		d.Change.ID != webhooks.ChangeID("any", "u1", "enter", now) {
		t.Errorf("dead letter %+v", d)
	}
	recv.failing.Store(false)
	if n, err := s.Redeliver(ctx, "test", "cdp"); err != nil || n != 1 {
		t.Fatalf("Redeliver = %d, %v", n, err)
	}
	testenv.Eventually(t, 30*time.Second, "the redelivered change", func() bool { return recv.distinct() == 1 })
	testenv.Eventually(t, 30*time.Second, "an empty outbox", func() bool {
		pending, dead, _ := s.Outbox().Counts(ctx)
		return pending == 0 && dead == 0
	})
	if _, err := s.DeadLetters(ctx, "nope", 10); !errors.Is(err, derrors.ErrNotFound) {
		t.Errorf("dead letters of an unknown webhook: %v", err)
	}
	// Every change of configuration is audited, never with the secret.
	var n int
	var leaked bool
	if err := pool.QueryRow(ctx, `SELECT count(*), bool_or(coalesce(after::text, '') LIKE '%' || $1 || '%')
		FROM audit_log WHERE entity = 'webhook' AND entity_key = 'cdp'`, created.Secret).Scan(&n, &leaked); err != nil {
		t.Fatal(err)
	}
	if n != 3 || leaked {
		t.Errorf("%d audit entries (want create, update, redeliver), secret leaked: %v", n, leaked)
	}
}
