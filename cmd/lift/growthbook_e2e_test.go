package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	growthbook "github.com/growthbook/growthbook-golang"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/bandit"
	banditstore "github.com/liftlab/lift/bandit/pgstore"
	"github.com/liftlab/lift/internal/testenv"
)

// GrowthBook's SDKs, unchanged, against a real lift on the real services: the JS SDK
// (npm @growthbook/growthbook under Node, testdata/growthbook-js, installed by
// scripts/tools growthbook-js) and the Go SDK (github.com/growthbook/growthbook-golang).
// The configuration is experiments/gbpayload's fixture: experiments with coverage,
// namespaces, hash versions 1 and 2, targeting, segments and a bandit; flags with
// saved groups, rollouts, experiment rules, one disabled.

const gbUsers = 2000

// gbSetup starts lift with the fixture's configuration and published bandit weights,
// and returns the keys of every experiment and flag.
func gbSetup(t *testing.T) (*fixture, *liftProc, []string) {
	t.Helper()
	f := newFixture(t)
	p := f.start(t)
	data, err := os.ReadFile("../../experiments/gbpayload/testdata/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string][]map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kind := range []struct{ field, path string }{
		{"SavedGroups", "saved-groups"}, {"Segments", "segments"}, {"Experiments", "experiments"}, {"Flags", "flags"},
	} {
		for _, doc := range cfg[kind.field] {
			if b, ok := doc["bandit"].(map[string]any); ok {
				b["update_every"] = "1h" // weights change when the test publishes them
			}
			body, _ := json.Marshal(doc)
			f.server.want(201, "POST", "/api/v1/"+kind.path, string(body), nil)
			if kind.path == "experiments" || kind.path == "flags" {
				keys = append(keys, doc["key"].(string))
			}
		}
	}
	// The updater publishes reco's first weights as soon as it leads; its next round is
	// an hour away (update_every), so the weights published after it stay.
	pool, err := pgxpool.New(context.Background(), f.env["LIFT_POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	testenv.Eventually(t, 30*time.Second, "reco's first bandit weights", func() bool {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM bandit_weights WHERE experiment = 'reco'`).Scan(&n)
		return err == nil && n > 0
	})
	publishWeights(t, f.env, [3]float64{0.2, 0.3, 0.5})
	testenv.Eventually(t, 5*time.Second, "the weights 0.2/0.3/0.5 in the GrowthBook payload", func() bool {
		var pl struct{ Features map[string]json.RawMessage }
		f.client.do("GET", "/api/features/"+f.client.key, "", &pl)
		return len(pl.Features) == len(keys) && strings.Contains(string(pl.Features["reco"]), `"weights":[0.2,0.3,0.5]`)
	})
	return f, p, keys
}

// publishWeights stores bandit weights for reco as the updater does.
func publishWeights(t *testing.T, env map[string]string, global [3]float64) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), env["LIFT_POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	arms := []string{"trending", "similar", "bestsellers"}
	pub := func(segment string, w []float64) bandit.Publication {
		p := bandit.Publication{Experiment: "reco", Segment: segment, Variants: arms, Counts: make([]bandit.Counts, 3)}
		p.Weights, p.PBest, p.Posteriors = w, []float64{0.3, 0.3, 0.4}, make([]bandit.Summary, 3)
		return p
	}
	if err := banditstore.New(pool).Publish(context.Background(), []bandit.Publication{
		pub("", global[:]), pub("new", []float64{0.7, 0.2, 0.1}), pub("returning", []float64{0.1, 0.8, 0.1}),
	}); err != nil {
		t.Fatal(err)
	}
}

func gbUserID(i int) string {
	switch i % 6 {
	case 1:
		return fmt.Sprintf("ü-%d", i)
	case 3:
		return fmt.Sprintf("用户-%d", i)
	case 5:
		return fmt.Sprintf("user-🙂-%d", i)
	}
	return fmt.Sprintf("u-%d", i)
}

func gbAttributes(i int) map[string]any {
	countries := []string{"US", "CA", "DE", "FR", "GB", "JP"}
	return map[string]any{
		"id":      gbUserID(i),
		"country": countries[(i/2)%len(countries)],
		"device":  []string{"mobile", "desktop"}[(i/3)%2],
		"visits":  float64((i / 5) % 5),
		"plan":    []string{"free", "pro"}[(i/7)%2],
		"age":     float64(18 + (i*7)%50),
	}
}

// decideAll asks /v1/decide (no exposures) for each user's values and segments; it
// adds the segments to the attributes as lift_segments, as an app would.
func decideAll(t *testing.T, f *fixture, users []map[string]any) map[string]map[string]json.RawMessage {
	t.Helper()
	out := map[string]map[string]json.RawMessage{}
	for _, attrs := range users {
		body, _ := json.Marshal(map[string]any{"user_id": attrs["id"], "attributes": attrs, "track": false, "segments": true})
		var r struct {
			Decisions map[string]struct{ Value json.RawMessage }
			Segments  []string
		}
		f.client.want(200, "POST", "/v1/decide", string(body), &r)
		vals := map[string]json.RawMessage{}
		for k, d := range r.Decisions {
			vals[k] = d.Value
		}
		out[attrs["id"].(string)] = vals
		attrs["lift_segments"] = r.Segments
	}
	return out
}

func payloadETag(f *fixture) string {
	return f.client.do("GET", "/api/features/"+f.client.key, "", nil).Header.Get("ETag")
}

// runJS runs testdata/growthbook-js/run.mjs with a job and returns its stdout lines.
func runJS(t *testing.T, job map[string]any) *exec.Cmd {
	t.Helper()
	dir := filepath.Join("testdata", "growthbook-js")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@growthbook", "growthbook")); err != nil {
		t.Fatalf("GrowthBook's JS SDK is not installed: run scripts/tools growthbook-js (%v)", err)
	}
	cmd := exec.Command("node", "run.mjs")
	cmd.Dir = dir
	in, _ := json.Marshal(job)
	cmd.Stdin = strings.NewReader(string(in))
	cmd.Stderr = &testWriter{t: t}
	return cmd
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) { w.t.Logf("node: %s", p); return len(p), nil }

type jsResult struct {
	Values    map[string]map[string]json.RawMessage `json:"values"`
	Exposures int                                   `json:"exposures"`
	Failed    []string                              `json:"failed"`
}

func compareValues(t *testing.T, sdk string, got, want map[string]map[string]json.RawMessage) {
	t.Helper()
	mismatches := 0
	for id, vals := range want {
		for key, v := range vals {
			if !jsonEqual(got[id][key], string(v)) {
				if mismatches++; mismatches <= 5 {
					t.Errorf("%s, user %q, %s: SDK %s, /v1/decide %s", sdk, id, key, got[id][key], v)
				}
			}
		}
	}
	if mismatches > 0 {
		t.Fatalf("%s: %d evaluations differ from /v1/decide", sdk, mismatches)
	}
}

// TestGrowthBookSDKsEvaluateAsDecide: for 2,000 users (a half non-ASCII) both SDKs
// evaluate every experiment and flag as /v1/decide does, and the exposures their
// tracking callbacks send land in ClickHouse's exposures table.
func TestGrowthBookSDKsEvaluateAsDecide(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs GrowthBook's SDKs against the real pipeline")
	}
	f, p, keys := gbSetup(t)
	var users []map[string]any
	for i := range gbUsers {
		users = append(users, gbAttributes(i))
	}
	tracked := map[string]bool{}
	for i := 0; i < 60; i++ {
		tracked[gbUserID(i)] = true // the first 60 users' exposures are sent
	}
	etag := payloadETag(f)
	want := decideAll(t, f, users)

	// JavaScript.
	jobUsers := make([]map[string]any, len(users))
	for i, u := range users {
		jobUsers[i] = map[string]any{"attributes": u, "track": tracked[u["id"].(string)] && i%2 == 0}
	}
	out, err := runJS(t, map[string]any{"mode": "local", "apiHost": p.url, "clientKey": f.client.key, "keys": keys, "users": jobUsers}).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var js jsResult
	if err := json.Unmarshal(out, &js); err != nil {
		t.Fatalf("%v: %.300s", err, out)
	}
	if now := payloadETag(f); now != etag {
		t.Fatalf("the configuration changed during the comparison (ETag %s → %s)", etag, now)
	}
	compareValues(t, "JS SDK", js.Values, want)
	if len(js.Failed) > 0 || js.Exposures == 0 {
		t.Fatalf("JS tracking callback: %d exposures sent, failures %v", js.Exposures, js.Failed)
	}

	// Go.
	ctx := context.Background()
	var mu sync.Mutex
	goExposures := 0
	tracking := false
	gb, err := growthbook.NewClient(ctx, growthbook.WithLogger(slog.New(slog.DiscardHandler)), growthbook.WithApiHost(p.url),
		growthbook.WithClientKey(f.client.key), growthbook.WithPollDataSource(time.Hour),
		growthbook.WithExperimentCallback(func(_ context.Context, x *growthbook.Experiment, r *growthbook.ExperimentResult, _ *growthbook.TrackingUserContext, _ any) {
			mu.Lock()
			defer mu.Unlock()
			if !tracking {
				return
			}
			// The callback of docs/sdk.md.
			ev, _ := json.Marshal(map[string]any{"events": []map[string]any{{"type": "$exposure", "user_id": r.HashValue,
				"properties": map[string]any{"experiment": x.Key, "variant": r.Key, "segment": x.Phase,
					"assignment_probability": x.Weights[r.VariationId]}}}})
			f.client.want(202, "POST", "/v1/events", string(ev), nil)
			goExposures++
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer gb.Close()
	if err := gb.EnsureLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]json.RawMessage{}
	for i, attrs := range users {
		user, err := gb.WithAttributes(attrs)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		tracking = tracked[attrs["id"].(string)] && i%2 == 1
		mu.Unlock()
		vals := map[string]json.RawMessage{}
		for _, key := range keys {
			b, _ := json.Marshal(user.EvalFeature(ctx, key).Value)
			vals[key] = b
		}
		got[attrs["id"].(string)] = vals
	}
	compareValues(t, "Go SDK", got, want)
	if now := payloadETag(f); now != etag {
		t.Fatalf("the configuration changed during the comparison (ETag %s → %s)", etag, now)
	}

	// Exposures from both callbacks, in ClickHouse.
	count := clickhouseCount(t, f.env)
	ids := make([]string, 0, len(tracked))
	for id := range tracked {
		ids = append(ids, id)
	}
	total := js.Exposures + goExposures
	if goExposures == 0 {
		t.Fatal("the Go SDK's callback sent no exposure")
	}
	testenv.Eventually(t, 30*time.Second, "every SDK exposure in ClickHouse", func() bool {
		return count("SELECT count() FROM exposures WHERE has(?, user_id)", ids) >= uint64(total)
	})
	if n := count("SELECT count() FROM exposures WHERE has(?, user_id)", ids); n != uint64(total) {
		t.Fatalf("%d exposures stored, %d sent", n, total)
	}
	if n := count("SELECT count() FROM exposures WHERE has(?, user_id) AND experiment = 'reco' AND segment IN ('new', 'returning')", ids); n == 0 {
		t.Fatal("no exposure of reco carries its bandit segment")
	}
	t.Logf("%d users × %d keys agree; %d exposures (JS %d, Go %d) stored", len(users), len(keys), total, js.Exposures, goExposures)
}

// TestGrowthBookStreaming: streaming SDKs see a flag change and a bandit weight
// publication within a second.
func TestGrowthBookStreaming(t *testing.T) {
	if testing.Short() {
		t.Skip("runs GrowthBook's SDKs against the real pipeline")
	}
	f, p, _ := gbSetup(t)

	// JavaScript, with the eventsource package as EventSource.
	cmd := runJS(t, map[string]any{"mode": "stream", "apiHost": p.url, "clientKey": f.client.key, "key": "free-shipping"})
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != `{"ready":false}` {
		t.Fatalf("node: %q", lines.Text())
	}
	start := time.Now()
	f.server.want(200, "PUT", "/api/v1/flags/free-shipping", `{"type":"boolean","default":true}`, nil)
	changed := make(chan string, 1)
	go func() {
		lines.Scan()
		changed <- lines.Text()
	}()
	select {
	case line := <-changed:
		if line != `{"changed":true}` {
			t.Fatalf("node: %q", line)
		}
		t.Logf("JS SDK saw the change %v after the API answered", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("the JS SDK did not see the change within 1 s")
	}

	// Go, in streaming mode.
	ctx := context.Background()
	gb, err := growthbook.NewClient(ctx, growthbook.WithLogger(slog.New(slog.DiscardHandler)), growthbook.WithApiHost(p.url),
		growthbook.WithClientKey(f.client.key), growthbook.WithSseDataSource())
	if err != nil {
		t.Fatal(err)
	}
	defer gb.Close()
	if err := gb.EnsureLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the stream connects after the first load
	f.server.want(200, "PUT", "/api/v1/flags/free-shipping", `{"type":"boolean","default":false}`, nil)
	waited := testenv.Eventually(t, propagation, "the Go SDK to see the flag change", func() bool { return gb.EvalFeature(ctx, "free-shipping").Value == false })
	t.Logf("Go SDK saw the flag change %v after the API answered", waited)

	weights := func() []float64 {
		for _, r := range gb.Features()["reco"].Rules {
			if r.Phase == "" {
				return r.Weights
			}
		}
		return nil
	}
	publishWeights(t, f.env, [3]float64{0.6, 0.3, 0.1})
	waited = testenv.Eventually(t, propagation, "the Go SDK to see the new bandit weights", func() bool { return reflect.DeepEqual(weights(), []float64{0.6, 0.3, 0.1}) })
	t.Logf("Go SDK saw the bandit weights %v after they were published", waited)
}

// TestGrowthBookRemoteEval: the JS SDK in remote-evaluation mode gets /v1/decide's
// values, including those of a behavioural segment only lift's segment engine knows.
func TestGrowthBookRemoteEval(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs GrowthBook's SDK against the real pipeline")
	}
	f, p, keys := gbSetup(t)
	const member = "intent-🙂-1"
	for i := range 3 {
		f.client.want(202, "POST", "/v1/events", fmt.Sprintf(`{"events":[{"type":"product_view","user_id":%q,"properties":{"sku":"s%d"}}]}`, member, i), nil)
	}
	testenv.Eventually(t, 20*time.Second, "the member in high-intent", func() bool {
		var r struct{ Segments []string }
		f.client.do("POST", "/v1/decide", fmt.Sprintf(`{"user_id":%q,"track":false,"segments":true}`, member), &r)
		return strings.Contains(strings.Join(r.Segments, ","), "high-intent")
	})
	users := []map[string]any{gbAttributes(1), gbAttributes(8), gbAttributes(15)}
	users = append(users, map[string]any{"id": member, "country": "US", "device": "desktop", "visits": 1.0, "plan": "free", "age": 30.0})
	etag := payloadETag(f)
	want := decideAll(t, f, users)
	if string(want[member]["discount"]) != `"INTENT15"` || string(want[member]["intent-exp"]) == "" {
		t.Fatalf("the member's decisions: %v", want[member])
	}
	jobUsers := make([]map[string]any, len(users))
	for i, u := range users {
		delete(u, "lift_segments") // remote evaluation knows them
		jobUsers[i] = map[string]any{"attributes": u, "track": true}
	}
	out, err := runJS(t, map[string]any{"mode": "remote", "apiHost": p.url, "clientKey": f.client.key, "keys": keys, "users": jobUsers}).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var js jsResult
	if err := json.Unmarshal(out, &js); err != nil {
		t.Fatalf("%v: %.300s", err, out)
	}
	compareValues(t, "JS SDK (remote evaluation)", js.Values, want)
	if js.Exposures != 0 {
		t.Fatalf("the callback sent %d exposures lift had logged", js.Exposures)
	}
	if now := payloadETag(f); now != etag {
		t.Fatalf("the configuration changed during the comparison (ETag %s → %s)", etag, now)
	}
	// lift logged the remote evaluation's exposures itself, as /v1/decide would.
	count := clickhouseCount(t, f.env)
	testenv.Eventually(t, 30*time.Second, "the remote evaluation's exposure in ClickHouse", func() bool {
		return count("SELECT count() FROM exposures WHERE user_id = ? AND experiment = 'intent-exp'", member) >= 1
	})
}
