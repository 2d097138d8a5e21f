package pgstore_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/pgstore"
	"github.com/liftlab/lift/segments/webhooks"
)

func newWebhookStore(t *testing.T) (*pgstore.Store, *pgxpool.Pool) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pgstore.New(pool), pool
}

// runDispatcher runs d until stop is called or the test ends.
func runDispatcher(t *testing.T, d *webhooks.Dispatcher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func lastErrors(t *testing.T, s *pgstore.Store, keys ...string) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		dls, err := s.DeadLetters(context.Background(), k, 10)
		if err != nil || len(dls) != 1 {
			t.Fatalf("dead letters of %s: %+v, %v; want one", k, dls, err)
		}
		out = append(out, dls[0].LastError)
	}
	return out
}

// Webhooks are an editor's way to make lift send requests (issue 17, finding 7). By
// default a delivery to 127.0.0.1 is refused: a URL naming the address when it is
// saved; a name resolving to it ("localhost") when the delivery connects, and so is
// an address saved while the allow-list covered it. The dead letter says "address
// not allowed" and no more; with 127.0.0.1/32 allowed the same changes arrive.
func TestWebhooksRefuseLoopbackByDefault(t *testing.T) {
	t.Parallel()
	s, pool := newWebhookStore(t)
	ctx := context.Background()
	const secret = "a-secret-of-more-than-16"
	recv, srv := newReceiver(t, secret)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))

	_, err := s.CreateWebhook(ctx, "test", webhooks.Webhook{Key: "literal", URL: srv.URL, Secret: secret})
	var ve *derrors.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "url" {
		t.Fatalf("saving a webhook to %s: %v, want a field error on url", srv.URL, err)
	}
	t.Logf("refused when saved: %v", err)
	if _, err := s.CreateWebhook(ctx, "test", webhooks.Webhook{Key: "byname", URL: "http://localhost:" + port + "/hook", Secret: secret}); err != nil {
		t.Fatalf("a host name is checked when delivering, not when saved: %v", err)
	}
	// Saved while the operator allowed loopback, delivered after the allow-list
	// changed.
	allowed := pgstore.New(pool)
	allowed.WebhookGuard = allowLoopback
	if _, err := allowed.CreateWebhook(ctx, "test", webhooks.Webhook{Key: "literal", URL: srv.URL, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, []segments.Change{{Kind: segments.Enter, UserID: "u1", Segment: "any", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}

	byDefault := fastDispatcher(s, 1)
	byDefault.Guard = nil
	stop := runDispatcher(t, byDefault)
	testenv.Eventually(t, 30*time.Second, "two dead letters", func() bool { _, dead, _ := s.Outbox().Counts(ctx); return dead == 2 })
	stop()
	if n := recv.calls.Load(); n != 0 {
		t.Fatalf("the receiver on 127.0.0.1 got %d requests", n)
	}
	if got := lastErrors(t, s, "byname", "literal"); got[0] != webhooks.ReasonNotAllowed || got[1] != webhooks.ReasonNotAllowed {
		t.Errorf("last errors %q, want %q for both", got, webhooks.ReasonNotAllowed)
	}

	runDispatcher(t, fastDispatcher(s, 1)) // 127.0.0.1/32 allowed
	for _, k := range []string{"byname", "literal"} {
		if _, err := s.Redeliver(ctx, "test", k); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 30*time.Second, "an empty outbox", func() bool { p, dead, _ := s.Outbox().Counts(ctx); return p == 0 && dead == 0 })
	if n := recv.calls.Load(); n != 2 {
		t.Errorf("%d requests with 127.0.0.1/32 allowed, want one per webhook", n)
	}
}

// A receiver's redirect is a failed delivery ("HTTP 302: redirect not followed"); its
// target gets nothing.
func TestWebhooksDoNotFollowRedirects(t *testing.T) {
	t.Parallel()
	s, _ := newWebhookStore(t)
	s.WebhookGuard = allowLoopback
	ctx := context.Background()
	const secret = "a-secret-of-more-than-16"
	target, targetSrv := newReceiver(t, secret)
	redirector := httptest.NewServer(http.RedirectHandler(targetSrv.URL+"/admin", http.StatusFound))
	t.Cleanup(redirector.Close)
	if _, err := s.CreateWebhook(ctx, "test", webhooks.Webhook{Key: "moved", URL: redirector.URL, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, []segments.Change{{Kind: segments.Enter, UserID: "u1", Segment: "any", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, fastDispatcher(s, 1))
	testenv.Eventually(t, 30*time.Second, "one dead letter", func() bool { _, dead, _ := s.Outbox().Counts(ctx); return dead == 1 })
	if n := target.calls.Load(); n != 0 {
		t.Errorf("the redirect was followed: its target got %d requests", n)
	}
	if got := lastErrors(t, s, "moved")[0]; got != "HTTP 302: redirect not followed" {
		t.Errorf("last error %q", got)
	}
}
