package chaos_test

import (
	"context"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/liftlab/lift/internal/chaos"
	"github.com/liftlab/lift/internal/testenv"
)

// fixture is one scenario's lift configuration: its databases and broker, and a
// client and a server key.
type fixture struct {
	env                  map[string]string
	chAddr, chDB         string
	clientKey, serverKey string
}

// newFixture completes env with the shared services (a fresh database or vhost
// each) for whatever the scenario did not set, and creates the keys.
func newFixture(t *testing.T, env map[string]string) *fixture {
	t.Helper()
	testenv.Integration(t)
	f := &fixture{env: map[string]string{
		"LIFT_LOG_LEVEL":         "info",
		"LIFT_EVENTS_RATE":       "0",
		"LIFT_DECIDE_RATE":       "0",
		"LIFT_INGEST_BATCH_WAIT": "500ms",
		"LIFT_RESYNC_INTERVAL":   "5s",
		"LIFT_SHUTDOWN_GRACE":    "10s",
	}}
	maps.Copy(f.env, env)
	if f.env["LIFT_POSTGRES_URL"] == "" {
		f.env["LIFT_POSTGRES_URL"] = testenv.Postgres(t)
	}
	if f.env["LIFT_CLICKHOUSE_DB"] == "" {
		f.env["LIFT_CLICKHOUSE_ADDR"], f.env["LIFT_CLICKHOUSE_DB"] = testenv.ClickHouse(t)
	}
	if f.env["LIFT_AMQP_URL"] == "" {
		f.env["LIFT_AMQP_URL"] = testenv.AMQPURL(t)
	}
	f.chAddr, f.chDB = f.env["LIFT_CLICKHOUSE_ADDR"], f.env["LIFT_CLICKHOUSE_DB"]
	f.clientKey = f.cli(t, "keys", "create", "--kind", "client", "--name", "chaos")
	f.serverKey = f.cli(t, "keys", "create", "--kind", "server", "--name", "chaos")
	return f
}

// with returns the fixture's environment with some variables replaced.
func (f *fixture) with(kv ...string) map[string]string {
	env := maps.Clone(f.env)
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

func (f *fixture) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(chaos.Binary(t), args...)
	cmd.Env = os.Environ()
	for k, v := range f.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lift %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// api calls the management API with the server key and fails the test on an
// unexpected status.
func (f *fixture) api(t *testing.T, base, method, path, body string, want int) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.serverKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
}

// stream starts an event stream against lift and returns it and a channel closed
// when it has sent everything.
func stream(t *testing.T, s *chaos.Stream) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return done
}

// accept checks the acceptance shared by the scenarios that lose nothing: every
// event sent was acknowledged in the end, every acknowledged one is stored once.
func accept(t *testing.T, f chaos.Figures, sent int, r chaos.Result) {
	t.Helper()
	t.Log(f.String())
	if r.GaveUp > 0 || f.Accepted != sent {
		t.Errorf("%d of %d events acknowledged, %d batches given up", f.Accepted, sent, r.GaveUp)
	}
	if f.Lost != 0 || f.Duplicated != 0 {
		t.Errorf("lost %d, duplicated after FINAL %d: want 0 and 0", f.Lost, f.Duplicated)
	}
}
