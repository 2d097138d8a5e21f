package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/bandit"
	banditstore "github.com/liftlab/lift/bandit/pgstore"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/pgstore"
)

// TestBanditDashboard renders a bandit's dashboard page from real data: weights
// published to Postgres and exposures and purchases in ClickHouse. The weights come
// from Postgres, every number about the arms from the bandit's results over the same
// data (not the published posteriors, which say b is best with 98%). The experiment
// is paused so the updater leaves the published weights alone; it asks for no
// minimum sample or runtime, so its candidate shows.
func TestBanditDashboard(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const pw = "correct horse battery"
	runCLI(t, f.env, pw+"\n", "users", "create", "--email", "pm@example.com", "--role", "viewer")
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, f.env["LIFT_POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := experiments.NewService(pgstore.New(pool)).Create(ctx, "test", experiments.KindExperiment, []byte(`{"key":"reco","type":"bandit","status":"paused",
		"variants":[{"key":"a"},{"key":"b"}],"goal":{"event":"purchase","kind":"conversion"},
		"analysis":{"sequential":false,"min_users":0,"min_runtime":"0s"}}`)); err != nil {
		t.Fatal(err)
	}
	weights := banditstore.New(pool)
	for _, w := range [][]float64{{0.5, 0.5}, {0.2, 0.8}} {
		pub := bandit.Publication{Experiment: "reco", Variants: []string{"a", "b"},
			Counts: []bandit.Counts{{Exposures: 300, Conversions: 12}, {Exposures: 700, Conversions: 49}},
			Result: bandit.Result{Weights: w, PBest: []float64{0.02, 0.98},
				Posteriors: []bandit.Summary{{Mean: 0.04, Low: 0.022, High: 0.062}, {Mean: 0.07, Low: 0.053, High: 0.089}}}}
		if err := weights.Publish(ctx, []bandit.Publication{pub}); err != nil {
			t.Fatal(err)
		}
	}
	p := f.start(t)
	insertBanditData(t, f.env["LIFT_CLICKHOUSE_ADDR"], f.env["LIFT_CLICKHOUSE_DB"])

	c := dashboardLogin(t, p.url, "pm@example.com", pw)
	// refresh=1: the background refresher may have cached the experiment before the
	// rows were inserted.
	body := getPage(t, c, p.url+"/experiments/reco?refresh=1")
	for id, want := range map[string]string{
		"weight-all-a": "20%", "weight-all-b": "80%",
		// a converts 10 of 100 users, b 30 of 100, all on one day: P(best) of b
		// 0.9999 by the results.
		"mean-all-a": "10.00%", "mean-all-b": "30.00%", "users-all-b": "100", "pbest-all-b": "99.99%", "pbest-all-a": "0.01%",
		"goal-b-value": "30.00%", "live-weight-b": "80%",
	} {
		m := regexp.MustCompile(`data-testid="` + id + `"[^>]*>([^<]*)`).FindStringSubmatch(body)
		if m == nil || strings.TrimSpace(html.UnescapeString(m[1])) != want {
			t.Errorf("%s: got %v, want %q", id, m, want)
		}
	}
	for _, id := range []string{"bandit-candidate", "weights-chart-all"} {
		if !strings.Contains(body, `data-testid="`+id+`"`) {
			t.Errorf("no %s", id)
		}
	}
}

func insertBanditData(t *testing.T, addr, db string) {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db, Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	exps, err := conn.PrepareBatch(ctx, "INSERT INTO exposures (event_id, ts, user_id, experiment, variant, segment, assignment_probability)")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := conn.PrepareBatch(ctx, "INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties)")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-2 * time.Hour)
	for variant, buyers := range map[string]int{"a": 10, "b": 30} {
		for i := range 100 {
			user := fmt.Sprintf("%s-%d", variant, i)
			if err := exps.Append(uuid.New(), at, user, "reco", variant, "", 0.5); err != nil {
				t.Fatal(err)
			}
			if i < buyers {
				if err := evs.Append(uuid.New(), "purchase", user, at.Add(time.Minute), at.Add(time.Minute), 0.0, "{}"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := exps.Send(); err != nil {
		t.Fatal(err)
	}
	if err := evs.Send(); err != nil {
		t.Fatal(err)
	}
}

// dashboardLogin signs in through the login form and returns the client holding the
// session cookie.
func dashboardLogin(t *testing.T, base, email, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(getPage(t, c, base+"/login"))
	if m == nil {
		t.Fatal("no CSRF token on the login page")
	}
	resp, err := c.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}, "csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c
}

func getPage(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", u, resp.StatusCode, b)
	}
	return string(b)
}
