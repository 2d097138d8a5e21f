package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/internal/testenv"
)

// Segment webhooks are how an editor makes lift send requests (issue 17, finding 7).
// With the default settings lift refuses a webhook URL naming an internal address,
// refuses to connect to a name resolving to one (here "localhost", an httptest
// receiver on 127.0.0.1), and tells viewers only that a delivery failed: the raw
// connection error would tell them which internal ports are open. Editors and server
// keys see the reason, never a raw error (not even one an older lift stored).
func TestWebhookSSRFAndErrorsByRole(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the real pipeline")
	}
	f := newFixture(t)
	const pw = "correct horse battery"
	runCLI(t, f.env, pw+"\n", "users", "create", "--email", "viewer@example.com", "--role", "viewer")
	runCLI(t, f.env, pw+"\n", "users", "create", "--email", "editor@example.com", "--role", "editor")
	p := f.start(t)
	var calls atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { calls.Add(1) }))
	defer recv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(recv.URL, "http://"))

	for _, u := range []string{recv.URL, "http://169.254.169.254/latest/meta-data/", "http://[::ffff:10.0.0.5]:5432/",
		"http://2130706433:" + port + "/", "https://user:pw@crm.example/hook"} {
		var body struct {
			Fields []struct{ Field, Message string } `json:"fields"`
		}
		f.server.want(422, "POST", "/api/v1/webhooks", fmt.Sprintf(`{"key":"crm","url":%q}`, u), &body)
		if len(body.Fields) != 1 || body.Fields[0].Field != "url" {
			t.Errorf("POST a webhook to %s: %+v, want a field error on url", u, body)
		}
	}
	f.server.want(201, "POST", "/api/v1/webhooks", `{"key":"crm","url":"http://localhost:`+port+`/hook"}`, nil)

	pool, err := pgxpool.New(context.Background(), f.env["LIFT_POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// A change on its last attempt, which lift's dispatcher now makes, and a dead
	// letter as an older lift stored it: with the raw error of a port scan.
	if _, err := pool.Exec(context.Background(), `INSERT INTO segment_webhook_outbox
		(webhook, kind, segment, user_id, at, attempts, next_attempt_at, dead_at, last_error) VALUES
		('crm', 'enter', 'keen', 'u1', now(), 7, now(), NULL, 'HTTP 503'),
		('crm', 'enter', 'keen', 'u0', now() - interval '1 day', 8, now(), now() - interval '1 hour',
		 'Post "http://10.0.0.5:5432/": dial tcp 10.0.0.5:5432: connect: connection refused')`); err != nil {
		t.Fatal(err)
	}
	type deadLetters struct {
		Items []struct {
			LastError string `json:"last_error"`
			Change    struct {
				UserID string `json:"user_id"`
			} `json:"change"`
		} `json:"items"`
	}
	reasons := func(get func() []byte) string {
		var d deadLetters
		if err := json.Unmarshal(get(), &d); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range d.Items {
			out = append(out, it.Change.UserID+": "+it.LastError)
		}
		slices.Sort(out)
		return strings.Join(out, "; ")
	}
	byKey := func() []byte {
		resp := f.server.do("GET", "/api/v1/webhooks/crm/dead", "", nil)
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	testenv.Eventually(t, 30*time.Second, "two failure reasons", func() bool { return strings.Count(reasons(byKey), ":") == 2 })
	if n := calls.Load(); n != 0 {
		t.Errorf("the receiver on 127.0.0.1 got %d requests", n)
	}

	bySession := func(email string) func() []byte {
		c := dashboardLogin(t, p.url, email, pw)
		return func() []byte { return []byte(getPage(t, c, p.url+"/api/v1/webhooks/crm/dead")) }
	}
	detailed := "u0: delivery failed; u1: address not allowed"
	for who, get := range map[string]func() []byte{"server key": byKey, "editor": bySession("editor@example.com")} {
		if got := reasons(get); got != detailed {
			t.Errorf("%s sees %q, want %q", who, got, detailed)
		}
	}
	if got := reasons(bySession("viewer@example.com")); got != "u0: delivery failed; u1: delivery failed" {
		t.Errorf("a viewer sees %q, want only that deliveries failed", got)
	}
}
