package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/segments/webhooks"
)

// hookReceiver is a marketing tool's endpoint: it checks every signature and keeps
// the changes it got.
type hookReceiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []webhooks.Change
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := webhooks.Verify(h.secret, r.Header.Get(webhooks.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		h.t.Errorf("webhook with a bad signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p webhooks.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		h.t.Errorf("webhook body %s: %v", body, err)
	}
	h.mu.Lock()
	h.got = append(h.got, p.Changes...)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) changes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.got {
		out = append(out, c.Type+" "+c.Segment+" "+c.UserID)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// A changed definition is tried in preview before it affects anyone: saved as a
// draft it is computed from the events already stored (ClickHouse) beside the
// published one, its counts are in the stats, decisions keep the published one; once
// published, decisions and webhooks follow at once, without waiting for new events.
// Every version is kept and every step audited.
func TestSegmentPreviewPublishAndWebhooks(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("drives the real pipeline")
	}
	f := newFixture(t)
	f.env["LIFT_SEGMENT_REBUILD_DELAY"] = "1s"
	f.env["LIFT_INGEST_BATCH_WAIT"] = "100ms"
	f.env["LIFT_WEBHOOK_ALLOW_NETS"] = "127.0.0.1/32" // the receiver is an httptest server
	f.start(t)
	pool, err := pgxpool.New(context.Background(), f.env["LIFT_POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ready := func(keys ...string) { t.Helper(); waitEngineRuns(t, pool, 4, keys...) }

	const secret = "receiver-secret-0123456789"
	recv := &hookReceiver{t: t, secret: secret}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	f.server.want(201, "POST", "/api/v1/webhooks", fmt.Sprintf(`{"key":"crm","url":%q,"secret":%q,"segments":["keen"]}`, srv.URL, secret), nil)
	f.server.want(201, "POST", "/api/v1/segments", `{"key":"keen","kind":"behavioral",
		"rule":{"event":"product_view","count_gte":3,"within":"10m"},"ttl":"5m"}`, nil)
	f.server.want(201, "POST", "/api/v1/flags", `{"key":"offer","type":"string","default":"none",
		"rules":[{"segment":"keen","value":"discount","variant":"keen"}]}`, nil)
	ready("keen")

	views := func(user string, n int) {
		t.Helper()
		var evs []string
		for range n {
			evs = append(evs, fmt.Sprintf(`{"type":"product_view","user_id":%q}`, user))
		}
		f.client.want(202, "POST", "/v1/events", `{"events":[`+strings.Join(evs, ",")+`]}`, nil)
	}
	offer := func(user string) string {
		var r decideResp
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"`+user+`","keys":["offer"]}`, &r)
		return string(r.Decisions["offer"].Value)
	}
	type stats struct {
		Members int64 `json:"members"`
		Preview *struct {
			Version int   `json:"version"`
			Members int64 `json:"members"`
		} `json:"preview"`
	}
	getStats := func() stats {
		var s stats
		f.server.want(200, "GET", "/api/v1/segments/keen/stats", "", &s)
		return s
	}
	views("two-views", 2)
	views("three-views", 3)
	testenv.Eventually(t, 15*time.Second, "the discount offer for three-views", func() bool { return offer("three-views") == `"discount"` })
	if got := offer("two-views"); got != `"none"` {
		t.Fatalf("two-views is offered %s", got)
	}

	// The draft: two views are enough.
	var doc struct {
		Version int `json:"version"`
		Draft   *struct {
			Version int `json:"version"`
		} `json:"draft"`
	}
	f.server.want(200, "PUT", "/api/v1/segments/keen", `{"key":"keen","kind":"behavioral","status":"draft",
		"rule":{"event":"product_view","count_gte":2,"within":"10m"},"ttl":"5m"}`, &doc)
	if doc.Version != 1 || doc.Draft == nil || doc.Draft.Version != 2 {
		t.Fatalf("after saving a draft: version %d, draft %+v; want 1 published and draft 2", doc.Version, doc.Draft)
	}
	ready("keen", "keen@draft")
	// Its membership is computed from the events stored before it existed.
	testenv.Eventually(t, 15*time.Second, "the preview's two members", func() bool { s := getStats(); return s.Preview != nil && s.Preview.Members == 2 })
	if s := getStats(); s.Members != 1 || s.Preview.Version != 2 {
		t.Errorf("stats %+v, preview %+v; want 1 published member and the preview of version 2", s, s.Preview)
	}
	if got := offer("two-views"); got != `"none"` {
		t.Errorf("a draft changed a decision: two-views is offered %s", got)
	}

	doc.Draft = nil
	f.server.want(200, "POST", "/api/v1/segments/keen/publish", "", &doc)
	if doc.Version != 2 || doc.Draft != nil {
		t.Fatalf("after publishing: version %d, draft %+v", doc.Version, doc.Draft)
	}
	// The preview's state becomes the published segment's: two-views is in without
	// another event.
	testenv.Eventually(t, 20*time.Second, "the discount offer for two-views", func() bool { return offer("two-views") == `"discount"` })
	testenv.Eventually(t, 10*time.Second, "two published members and no preview", func() bool { s := getStats(); return s.Members == 2 && s.Preview == nil })
	testenv.Eventually(t, 15*time.Second, "the two webhook changes", func() bool { return len(recv.changes()) == 2 })
	if diff := strings.Join(recv.changes(), "; "); diff != "enter keen three-views; enter keen two-views" {
		t.Errorf("webhook got %s; want the two enters of keen (and nothing of the preview)", diff)
	}

	var versions struct {
		Items []struct {
			Version   int             `json:"version"`
			Published bool            `json:"published"`
			Segment   json.RawMessage `json:"segment"`
		} `json:"items"`
	}
	f.server.want(200, "GET", "/api/v1/segments/keen/versions", "", &versions)
	if len(versions.Items) != 2 || versions.Items[0].Published || !versions.Items[1].Published ||
		!strings.Contains(strings.ReplaceAll(string(versions.Items[1].Segment), " ", ""), `"count_gte":2`) {
		t.Errorf("versions %+v", versions.Items)
	}
	var audit struct {
		Items []struct{ Action string } `json:"items"`
	}
	f.server.want(200, "GET", "/api/v1/audit?entity=segment&key=keen", "", &audit)
	var actions []string
	for _, e := range audit.Items {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "publish,draft,create" {
		t.Errorf("audit actions %v, want publish, draft, create (newest first)", actions)
	}
}
