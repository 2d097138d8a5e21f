package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/openapi"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/web"
)

// liftProc is an in-process `lift serve`.
type liftProc struct {
	url   string
	admin string // the admin listener's URL, when LIFT_ADMIN_ADDR is set
	stop  func()
}

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// startLift runs `lift serve` in-process on a free port until stop or the test's end.
func startLift(t testing.TB, env map[string]string) *liftProc {
	t.Helper()
	env["LIFT_HTTP_ADDR"] = "127.0.0.1:0"
	env["LIFT_LOG_LEVEL"] = "warn"
	// The api and ingest roles need RabbitMQ and ClickHouse (else /readyz says
	// degraded): give each test its own vhost and database unless it chose them.
	if env["LIFT_AMQP_URL"] == "" {
		env["LIFT_AMQP_URL"] = testenv.AMQPURL(t)
	}
	if env["LIFT_CLICKHOUSE_DB"] == "" {
		env["LIFT_CLICKHOUSE_ADDR"], env["LIFT_CLICKHOUSE_DB"] = testenv.ClickHouse(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, envFunc(env), strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		cancel()
		t.Fatalf("lift serve exited before listening: %v", <-done)
	}
	addr, ok := strings.CutPrefix(lines.Text(), "lift listening on ")
	if !ok {
		t.Fatalf("unexpected first line %q", lines.Text())
	}
	var admin string
	if env["LIFT_ADMIN_ADDR"] != "" {
		if !lines.Scan() {
			cancel()
			t.Fatalf("lift serve exited before its admin listener: %v", <-done)
		}
		if admin, ok = strings.CutPrefix(lines.Text(), "lift admin on "); !ok {
			t.Fatalf("unexpected second line %q", lines.Text())
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	stopped := false
	p := &liftProc{url: addr, admin: admin, stop: func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("lift serve: %v", err)
		}
	}}
	t.Cleanup(p.stop)
	return p
}

// runCLI runs a lift subcommand in-process and returns its stdout.
func runCLI(t testing.TB, env map[string]string, stdin string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), args, envFunc(env), strings.NewReader(stdin), &out, &errOut); err != nil {
		t.Fatalf("lift %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

type client struct {
	t    testing.TB
	base string
	key  string
}

// do sends a request with a JSON body and decodes a JSON answer into out (if non-nil).
func (c client) do(method, path, body string, out any, headers ...string) *http.Response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	checkOpenAPI(c.t, method, req.URL.Path, resp, data)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp
}

// checkOpenAPI validates an answer against lift's OpenAPI document (web/openapi.json)
// when it documents the operation; the dashboard's pages are not in it.
func checkOpenAPI(t testing.TB, method, path string, resp *http.Response, body []byte) {
	t.Helper()
	doc, err := liftOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := doc.Operation(method, path); err != nil {
		return
	}
	if err := doc.CheckResponse(method, path, resp.StatusCode, resp.Header.Get("Content-Type"), body); err != nil {
		t.Errorf("%v\nbody: %.500s", err, body)
	}
}

var liftOpenAPI = sync.OnceValues(func() (*openapi.Doc, error) { return openapi.Parse(web.OpenAPI()) })

func (c client) want(status int, method, path, body string, out any, headers ...string) {
	c.t.Helper()
	resp := c.do(method, path, body, out, headers...)
	if resp.StatusCode != status {
		data, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, status, data)
	}
}

// jsonEqual compares JSON values, not their spelling: Postgres' jsonb respaces documents.
func jsonEqual(got json.RawMessage, want string) bool {
	var a, b any
	return json.Unmarshal(got, &a) == nil && json.Unmarshal([]byte(want), &b) == nil && reflect.DeepEqual(a, b)
}

type fixture struct {
	env    map[string]string
	server client
	client client
}

func newFixture(t testing.TB) *fixture {
	env := map[string]string{"LIFT_POSTGRES_URL": testenv.Postgres(t), "LIFT_RESYNC_INTERVAL": "30s"}
	f := &fixture{env: env}
	serverKey := strings.TrimSpace(runCLI(t, env, "", "keys", "create", "--kind", "server", "--name", "test server"))
	clientKey := strings.TrimSpace(runCLI(t, env, "", "keys", "create", "--kind", "client", "--name", "test client"))
	f.server = client{t: t, key: serverKey}
	f.client = client{t: t, key: clientKey}
	return f
}

func (f *fixture) start(t testing.TB) *liftProc {
	p := startLift(t, f.env)
	f.server.base, f.client.base = p.url, p.url
	return p
}

type decideResp struct {
	UserID    string `json:"user_id"`
	Decisions map[string]struct {
		Variant    string          `json:"variant"`
		Value      json.RawMessage `json:"value"`
		Reason     string          `json:"reason"`
		Experiment bool            `json:"experiment"`
	} `json:"decisions"`
}

// propagation bounds the waits for a configuration change to reach decisions. lift's
// contract is about a second, and the tests log how long each change took; the limit is
// wider so that a busy machine (CI runs every package at once on two cores) does not
// fail a test that measures nothing else.
const propagation = 10 * time.Second

const heroBanner = `{"key":"hero-banner","name":"Hero banner","type":"ab",
 "variants":[{"key":"control","weight":0.5,"value":{"img":"a.png"}},{"key":"bold","weight":0.5,"value":{"img":"b.png"}}],
 "targeting":{"country":{"$in":["US","CA"]}},"goal":{"event":"purchase","kind":"conversion"}}`

func TestManagementAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.start(t)
	s := f.server

	var created map[string]any
	s.want(201, "POST", "/api/v1/experiments", heroBanner, &created)
	if created["status"] != "draft" || created["hash_seed"] != "hero-banner" || created["hash_version"] != 2.0 {
		t.Errorf("created document lacks defaults: %v", created)
	}
	s.want(409, "POST", "/api/v1/experiments", heroBanner, nil)

	var verr struct {
		Error  string `json:"error"`
		Fields []struct{ Field, Message string }
	}
	s.want(422, "POST", "/api/v1/experiments", `{"key":"Bad Key","variants":[{"key":"a","weight":0.7},{"key":"a","weight":0.7}],
		"targeting":{"x":{"$nope":1}},"segments":["missing"]}`, &verr)
	got := map[string]bool{}
	for _, fe := range verr.Fields {
		got[fe.Field] = true
	}
	for _, want := range []string{"key", "variants[1].key", "variants", "targeting.x.$nope", "segments[0]"} {
		if !got[want] {
			t.Errorf("422 does not name field %s: %+v", want, verr.Fields)
		}
	}
	s.want(422, "POST", "/api/v1/experiments", `{"key":"typo","covrage":1,"variants":[{"key":"a"},{"key":"b"}]}`, &verr)
	if len(verr.Fields) != 1 || verr.Fields[0].Field != "covrage" {
		t.Errorf("unknown field not named: %+v", verr)
	}
	s.want(400, "POST", "/api/v1/experiments", `{"key":`, nil)

	// Lifecycle: draft → running → paused → running → stopped (final).
	var doc map[string]any
	s.want(200, "POST", "/api/v1/experiments/hero-banner/start", "", &doc)
	if doc["status"] != "running" {
		t.Errorf("after start: %v", doc["status"])
	}
	s.want(200, "POST", "/api/v1/experiments/hero-banner/pause", "", nil)
	s.want(200, "POST", "/api/v1/experiments/hero-banner/start", "", nil)
	s.want(200, "POST", "/api/v1/experiments/hero-banner/stop", "", nil)
	s.want(409, "POST", "/api/v1/experiments/hero-banner/start", "", nil)
	s.want(404, "POST", "/api/v1/experiments/nope/start", "", nil)

	// Segments and flags referencing them.
	s.want(201, "POST", "/api/v1/segments", `{"key":"us-mobile","kind":"attribute","condition":{"country":"US","device":"mobile"}}`, nil)
	s.want(201, "POST", "/api/v1/flags", `{"key":"free-shipping","type":"boolean","default":false,
		"rules":[{"segment":"us-mobile","rollout":0.2,"value":true}]}`, nil)
	s.want(409, "POST", "/api/v1/flags", `{"key":"hero-banner","type":"boolean","default":false}`, nil)
	s.want(409, "DELETE", "/api/v1/segments/us-mobile", "", nil)
	s.want(422, "PUT", "/api/v1/flags/free-shipping", `{"type":"boolean","default":"no"}`, &verr)
	s.want(200, "PUT", "/api/v1/flags/free-shipping", `{"type":"boolean","default":true,"enabled":false}`, nil)
	s.want(204, "DELETE", "/api/v1/segments/us-mobile", "", nil)
	s.want(404, "GET", "/api/v1/segments/us-mobile", "", nil)

	var list struct{ Items []map[string]any }
	s.want(200, "GET", "/api/v1/flags", "", &list)
	if len(list.Items) != 1 || list.Items[0]["enabled"] != false {
		t.Errorf("flags list: %v", list.Items)
	}

	// Every change is in the audit log with who made it and the before/after documents.
	var audit struct {
		Items []struct {
			Actor, Action, Entity, Key string
			Before, After              json.RawMessage
		}
	}
	s.want(200, "GET", "/api/v1/audit?entity=experiment&key=hero-banner", "", &audit)
	var actions []string
	for _, a := range audit.Items {
		actions = append(actions, a.Action)
	}
	if strings.Join(actions, ",") != "stop,start,pause,start,create" {
		t.Fatalf("audit actions for hero-banner, newest first: %v", actions)
	}
	last := audit.Items[0]
	if last.Action != "stop" || !strings.HasPrefix(last.Actor, "key:test server#") ||
		!strings.Contains(string(last.Before), `"paused"`) && !strings.Contains(string(last.Before), `"running"`) ||
		!strings.Contains(string(last.After), `"stopped"`) {
		t.Errorf("last audit entry: %+v", last)
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	p := f.start(t)
	anon := client{t: t, base: p.url}
	bad := client{t: t, base: p.url, key: "lift_sk_notakey"}

	anon.want(401, "POST", "/v1/decide", `{"user_id":"u1"}`, nil)
	bad.want(401, "POST", "/v1/decide", `{"user_id":"u1"}`, nil)
	bad.want(401, "GET", "/api/v1/experiments", "", nil)
	f.client.want(403, "GET", "/api/v1/experiments", "", nil)
	f.client.want(403, "POST", "/api/v1/flags", `{"key":"x","type":"boolean","default":true}`, nil)
	f.client.want(200, "POST", "/v1/decide", `{"user_id":"u1"}`, nil)
	f.server.want(200, "POST", "/v1/decide", `{"user_id":"u1"}`, nil)
	// X-API-Key works as well as a bearer token.
	anon.want(200, "POST", "/v1/decide", `{"user_id":"u1"}`, nil, "X-API-Key", f.client.key)

	// A revoked key stops working within a second, everywhere.
	var created struct {
		Key  string
		Info struct{ ID int64 }
	}
	f.server.want(201, "POST", "/api/v1/keys", `{"kind":"client","name":"short-lived"}`, &created)
	short := client{t: t, base: p.url, key: created.Key}
	testenv.Eventually(t, propagation, "the new key to be accepted", func() bool { return short.do("POST", "/v1/decide", `{"user_id":"u1"}`, nil).StatusCode == 200 })
	f.server.want(204, "DELETE", fmt.Sprintf("/api/v1/keys/%d", created.Info.ID), "", nil)
	testenv.Eventually(t, propagation, "the deleted key to be refused", func() bool { return short.do("POST", "/v1/decide", `{"user_id":"u1"}`, nil).StatusCode == 401 })
}

func TestDecide(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	f.server.want(201, "POST", "/api/v1/experiments", heroBanner, nil)
	f.server.want(201, "POST", "/api/v1/flags", `{"key":"theme","type":"string","default":"light",
		"rules":[{"condition":{"plan":"pro"},"value":"dark","variant":"pro"},{"experiment":"hero-banner"}]}`, nil)

	var r decideResp
	testenv.Eventually(t, propagation, "both experiments in the decision", func() bool {
		r = decideResp{}
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"u1","attributes":{"country":"US"}}`, &r)
		return len(r.Decisions) == 2
	})
	if d := r.Decisions["hero-banner"]; d.Reason != "not_eligible" || d.Variant != "control" || !d.Experiment ||
		!jsonEqual(d.Value, `{"img":"a.png"}`) {
		t.Errorf("draft experiment: %+v", d)
	}
	f.server.want(200, "POST", "/api/v1/experiments/hero-banner/start", "", nil)
	testenv.Eventually(t, propagation, "the started hero-banner to be served by split", func() bool {
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"u1","attributes":{"country":"US"}}`, &r)
		return r.Decisions["hero-banner"].Reason == "split"
	})
	r = decideResp{}
	f.client.want(200, "POST", "/v1/decide", `{"user_id":"u1","attributes":{"country":"FR","plan":"pro"},"keys":["theme"]}`, &r)
	if len(r.Decisions) != 1 || r.Decisions["theme"].Reason != "targeting_match" || !jsonEqual(r.Decisions["theme"].Value, `"dark"`) {
		t.Errorf("flag with keys filter: %+v", r.Decisions)
	}

	// Bad input gets a clear answer naming the problem.
	var e struct {
		Error  string
		Fields []struct{ Field string }
	}
	f.client.want(400, "POST", "/v1/decide", `{"attributes":{}}`, &e)
	if len(e.Fields) != 1 || e.Fields[0].Field != "user_id" {
		t.Errorf("missing user_id: %+v", e)
	}
	f.client.want(400, "POST", "/v1/decide", `{"user_id":42}`, &e)
	if len(e.Fields) != 1 || e.Fields[0].Field != "user_id" {
		t.Errorf("numeric user_id: %+v", e)
	}
	f.client.want(400, "POST", "/v1/decide", `{"user_id":"u1",`, &e)
	huge := `{"user_id":"u1","attributes":{"blob":"` + strings.Repeat("x", 2<<20) + `"}}`
	f.client.want(413, "POST", "/v1/decide", huge, nil)
}

func TestOFREP(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	f.server.want(201, "POST", "/api/v1/flags", `{"key":"new-nav","type":"boolean","default":false,
		"rules":[{"condition":{"country":"CA"},"value":true,"variant":"on"}]}`, nil)
	f.server.want(201, "POST", "/api/v1/experiments", strings.Replace(heroBanner, `"ab",`, `"ab","status":"running",`, 1), nil)

	type result struct {
		Key, Reason, Variant, ErrorCode, ErrorDetails string
		Value                                         json.RawMessage
	}
	var r result
	testenv.Eventually(t, propagation, "new-nav's targeting to be served over OFREP", func() bool {
		f.client.do("POST", "/ofrep/v1/evaluate/flags/new-nav", `{"context":{"targetingKey":"u1","country":"CA"}}`, &r)
		return r.Reason == "TARGETING_MATCH" && r.Variant == "on" && string(r.Value) == "true"
	})
	testenv.Eventually(t, propagation, "hero-banner to be served over OFREP", func() bool {
		return f.client.do("POST", "/ofrep/v1/evaluate/flags/hero-banner", `{"context":{"targetingKey":"u1"}}`, nil).StatusCode == 200
	})
	f.client.want(200, "POST", "/ofrep/v1/evaluate/flags/hero-banner", `{"context":{"targetingKey":"u1","country":"US"}}`, &r)
	if r.Reason != "SPLIT" || (r.Variant != "control" && r.Variant != "bold") {
		t.Errorf("experiment as flag: %+v", r)
	}
	f.client.want(404, "POST", "/ofrep/v1/evaluate/flags/nope", `{"context":{"targetingKey":"u1"}}`, &r)
	if r.ErrorCode != "FLAG_NOT_FOUND" || r.Key != "nope" {
		t.Errorf("unknown flag: %+v", r)
	}
	f.client.want(400, "POST", "/ofrep/v1/evaluate/flags/new-nav", `{"context":{"country":"CA"}}`, &r)
	if r.ErrorCode != "TARGETING_KEY_MISSING" {
		t.Errorf("missing targeting key: %+v", r)
	}
	f.client.want(400, "POST", "/ofrep/v1/evaluate/flags/new-nav", `not json`, &r)
	if r.ErrorCode != "PARSE_ERROR" {
		t.Errorf("bad body: %+v", r)
	}

	var bulk struct {
		Flags    []result
		Metadata map[string]any
	}
	resp := f.client.do("POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u1","country":"CA"}}`, &bulk)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || len(bulk.Flags) != 2 || etag == "" {
		t.Fatalf("bulk: %d %+v etag %q", resp.StatusCode, bulk, etag)
	}
	resp = f.client.do("POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u1","country":"CA"}}`, nil, "If-None-Match", etag)
	if resp.StatusCode != 304 {
		t.Errorf("bulk with matching If-None-Match: %d, want 304", resp.StatusCode)
	}
	// A configuration change changes the answer and so the ETag.
	f.server.want(200, "PUT", "/api/v1/flags/new-nav", `{"type":"boolean","default":false,"enabled":false}`, nil)
	testenv.Eventually(t, propagation, "the flag change to change the ETag", func() bool {
		return f.client.do("POST", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u1","country":"CA"}}`, nil,
			"If-None-Match", etag).StatusCode == 200
	})
}

// TestChangesReachEveryProcess runs two lift processes on one Postgres: a weight
// change made through one is served by the other within a second.
func TestChangesReachEveryProcess(t *testing.T) {
	f := newFixture(t)
	a := f.start(t)
	b := startLift(t, f.env)
	viaA := client{t: t, base: a.url, key: f.server.key}
	viaB := client{t: t, base: b.url, key: f.client.key}

	allControl := `{"key":"w","status":"running","variants":[{"key":"control","weight":1},{"key":"treatment","weight":0}]}`
	allTreatment := `{"variants":[{"key":"control","weight":0},{"key":"treatment","weight":1}]}`
	viaA.want(201, "POST", "/api/v1/experiments", allControl, nil)
	variantOnB := func() string {
		var r decideResp
		viaB.want(200, "POST", "/v1/decide", `{"user_id":"someone"}`, &r)
		return r.Decisions["w"].Variant
	}
	testenv.Eventually(t, propagation, "the other process to serve control", func() bool { return variantOnB() == "control" })

	for i := range 5 {
		body, want := allTreatment, "treatment"
		if i%2 == 1 {
			body, want = strings.Replace(allControl, `"key":"w","status":"running",`, "", 1), "control"
		}
		start := time.Now()
		viaA.want(200, "PUT", "/api/v1/experiments/w", body, nil)
		took := testenv.Eventually(t, propagation, "the other process to serve the change", func() bool { return variantOnB() == want })
		t.Logf("change %d served by the other process after %v (PUT returned after %v)", i, took, time.Since(start)-took)
	}
}

// TestStableAcrossRestarts checks that a restarted process assigns every user the
// variant they had before.
func TestStableAcrossRestarts(t *testing.T) {
	f := newFixture(t)
	p := f.start(t)
	f.server.want(201, "POST", "/api/v1/experiments",
		`{"key":"s","status":"running","variants":[{"key":"a","weight":0.2},{"key":"b","weight":0.3},{"key":"c","weight":0.5}]}`, nil)
	assignments := func() map[string]string {
		out := map[string]string{}
		for i := range 200 {
			var r decideResp
			id := fmt.Sprintf("user-%d", i)
			f.client.want(200, "POST", "/v1/decide", `{"user_id":"`+id+`","keys":["s"]}`, &r)
			out[id] = r.Decisions["s"].Variant
		}
		return out
	}
	testenv.Eventually(t, 30*time.Second, "user-0's assignment", func() bool {
		var r decideResp
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"user-0","keys":["s"]}`, &r)
		return r.Decisions["s"].Variant != ""
	})
	before := assignments()
	p.stop()
	f.start(t)
	after := assignments()
	for id, v := range before {
		if after[id] != v {
			t.Errorf("%s: %s before restart, %s after", id, v, after[id])
		}
	}
}

// TestPostgresOutage cuts the connection to Postgres: decisions keep coming from the
// last snapshot, /readyz says degraded, and changes flow again once it is back.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	direct := f.env["LIFT_POSTGRES_URL"]
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	// Configure through a process that talks to Postgres directly.
	admin := startLift(t, map[string]string{"LIFT_POSTGRES_URL": direct})
	f.server.base = admin.url
	f.server.want(201, "POST", "/api/v1/experiments",
		`{"key":"e","status":"running","variants":[{"key":"a","weight":0.5},{"key":"b","weight":0.5}]}`, nil)

	proxy := testenv.NewProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = proxy.Addr()
	p := startLift(t, map[string]string{"LIFT_POSTGRES_URL": viaProxy.String(), "LIFT_RESYNC_INTERVAL": "1s"})
	c := client{t: t, base: p.url, key: f.client.key}
	var r decideResp
	c.want(200, "POST", "/v1/decide", `{"user_id":"u1"}`, &r)
	want := r.Decisions["e"].Variant
	if want == "" {
		t.Fatalf("no decision before the outage: %+v", r)
	}

	proxy.Cut()
	var ready struct{ Status string }
	testenv.Eventually(t, 5*time.Second, "readiness to report degraded", func() bool {
		c.do("GET", "/readyz", "", &ready)
		return ready.Status == "degraded"
	})
	for i := range 200 {
		c.want(200, "POST", "/v1/decide", `{"user_id":"u1"}`, &r)
		if r.Decisions["e"].Variant != want {
			t.Fatalf("request %d during the outage: %+v", i, r.Decisions)
		}
	}
	f.server.want(200, "POST", "/api/v1/experiments/e/stop", "", nil)

	proxy.Restore()
	testenv.Eventually(t, 10*time.Second, "decisions after the restore", func() bool {
		c.want(200, "POST", "/v1/decide", `{"user_id":"u1"}`, &r)
		return r.Decisions["e"].Reason == "not_eligible"
	})
	testenv.Eventually(t, 5*time.Second, "readiness to report ok", func() bool {
		c.do("GET", "/readyz", "", &ready)
		return ready.Status == "ok"
	})
}

// Finding 8a of issue 17: with LIFT_ADMIN_ADDR set, /metrics is served on the admin
// address only; the public address answers 404.
func TestMetricsOnAdminAddr(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.env["LIFT_ADMIN_ADDR"] = "127.0.0.1:0"
	p := f.start(t)
	f.client.want(200, "POST", "/v1/decide", `{"user_id":"u1"}`, nil)
	for name, c := range map[string]client{"no key": {t: t, base: p.url}, "client key": f.client, "server key": f.server} {
		if resp := c.do("GET", "/metrics", "", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("public /metrics with %s: status %d, want 404", name, resp.StatusCode)
		}
	}
	resp := client{t: t, base: p.admin}.do("GET", "/metrics", "", nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "lift_decide_duration_seconds_count 1") {
		t.Errorf("admin /metrics: status %d, want 200 with the decide latency", resp.StatusCode)
	}
}

// LIFT_TRUSTED_PROXIES reaches the server: from a listed proxy, X-Forwarded-Proto
// https makes the session cookie Secure (web/dashboard's tests cover the rest).
func TestTrustedProxiesSetting(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const pw = "proxied password 1"
	runCLI(t, f.env, pw+"\n", "users", "create", "--email", "ann@example.com", "--role", "viewer")
	f.env["LIFT_TRUSTED_PROXIES"] = "127.0.0.1"
	p := f.start(t)
	req, _ := http.NewRequest(http.MethodPost, p.url+"/login", strings.NewReader(url.Values{"email": {"ann@example.com"}, "password": {pw}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin") // instead of the CSRF token, as browsers do
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "lift_session" {
			session = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil || !session.Secure {
		t.Errorf("login through a trusted proxy over https: status %d, session cookie %v; want 303 and Secure", resp.StatusCode, session)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.start(t)
	anon := client{t: t, base: p.url}
	anon.want(200, "GET", "/healthz", "", nil)
	var ready struct {
		Status string
		Checks map[string]string
	}
	anon.want(200, "GET", "/readyz", "", &ready)
	if ready.Status != "ok" || ready.Checks["postgres"] != "ok" || ready.Checks["clickhouse"] != "ok" {
		t.Errorf("readyz: %+v", ready)
	}
	f.client.want(200, "POST", "/v1/decide", `{"user_id":"u1"}`, nil)
	resp := anon.do("GET", "/metrics", "", nil)
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"lift_decide_duration_seconds_count 1", "lift_snapshot_age_seconds",
		`lift_clickhouse_replica_up{replica="` + f.env["LIFT_CLICKHOUSE_ADDR"] + `",shard="1"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestUsersCreate(t *testing.T) {
	t.Parallel()
	env := map[string]string{"LIFT_POSTGRES_URL": testenv.Postgres(t)}
	out := runCLI(t, env, "correct horse battery\n", "users", "create", "--email", "Admin@Example.com", "--role", "admin")
	if !strings.Contains(out, "admin@example.com") {
		t.Errorf("output %q", out)
	}
	var errOut bytes.Buffer
	err := run(context.Background(), []string{"users", "create", "--email", "admin@example.com", "--role", "admin"},
		envFunc(env), strings.NewReader("another password\n"), io.Discard, &errOut)
	if err == nil {
		t.Error("creating the same user twice succeeded")
	}
	err = run(context.Background(), []string{"users", "create", "--email", "x@example.com", "--role", "root"},
		envFunc(env), strings.NewReader("long enough\n"), io.Discard, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--role") {
		t.Errorf("bad role: %v", err)
	}
}

func TestSegmentsCheck(t *testing.T) {
	t.Parallel()
	in := `{"condition":{"country":{"$in":["US","CA"]}},"attributes":{"country":"US"}}
{"condition":{"id":{"$inGroup":"beta"}},"attributes":{"id":"u2"},"savedGroups":{"beta":["u1"]}}
{"condition":{"age":{"$bogus":3}},"attributes":{}}
not json
`
	out := runCLI(t, nil, in, "segments", "check")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || lines[0] != `{"match":true}` || lines[1] != `{"match":false}` ||
		!strings.Contains(lines[2], `"error"`) || !strings.Contains(lines[2], "$bogus") || !strings.Contains(lines[3], `"error"`) {
		t.Errorf("segments check output:\n%s", out)
	}
}

func TestAnalyze(t *testing.T) {
	t.Parallel()
	in := `{"weights":[0.5,0.5],"variants":[{"key":"control","users":1000,"conversions":100},{"key":"bold","users":1000,"conversions":120}]}`
	var out struct {
		Variants []struct {
			Key                 string
			Lift                *float64
			PValue              *float64 `json:"p_value"`
			ChanceToBeatControl *float64 `json:"chance_to_beat_control"`
		}
		SRMPValue float64 `json:"srm_p_value"`
		SRM       *bool   `json:"srm"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, nil, in, "analyze")), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Variants) != 2 || out.Variants[0].ChanceToBeatControl != nil || out.Variants[1].ChanceToBeatControl == nil ||
		out.Variants[1].Lift == nil || out.Variants[1].PValue == nil ||
		out.SRM == nil || *out.SRM || out.SRMPValue != 1 {
		t.Errorf("analyze output: %+v", out)
	}
	var errOut bytes.Buffer
	err := run(context.Background(), []string{"analyze"}, envFunc(nil),
		strings.NewReader(`{"weights":[0.5,0.5],"variants":[{"key":"a","users":10,"conversions":20},{"key":"b","users":10}]}`), io.Discard, &errOut)
	if err == nil || !strings.Contains(err.Error(), "variants[0].conversions") {
		t.Errorf("invalid input: %v", err)
	}
}

// A sticky bandit returns a sticky-bucket document and honours it when sent back.
func TestStickyBucketing(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	f.server.want(201, "POST", "/api/v1/experiments", `{"key":"reco","type":"bandit","status":"running",
		"variants":[{"key":"a"},{"key":"b"}],"goal":{"event":"purchase","kind":"conversion"},"bandit":{"sticky":true}}`, nil)
	var r struct {
		decideResp
		Sticky map[string]string
	}
	testenv.Eventually(t, propagation, "reco's sticky assignment", func() bool {
		r.Sticky = nil
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"u1","track":false}`, &r)
		return r.Sticky["reco"] != ""
	})
	first := r.Sticky["reco"]
	other := map[string]string{"a": "b", "b": "a"}[first]
	f.client.want(200, "POST", "/v1/decide", `{"user_id":"u1","track":false,"sticky":{"reco":"`+other+`"}}`, &r)
	if r.Decisions["reco"].Variant != other || r.Sticky["reco"] != other {
		t.Errorf("sent back %s, got %+v and document %v", other, r.Decisions["reco"], r.Sticky)
	}
}
