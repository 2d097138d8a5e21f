package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

const testPseudonymKey = "e2e-pseudonymisation-key-0123456789"

// privacyFixture is lift with pseudonymisation on, one ingest consumer (so that the
// queue is consumed in order and a last event proves the earlier ones were handled),
// an A/B test, a behavioural segment and a flag serving it.
type privacyFixture struct {
	*fixture
	ch    *sql.DB
	pg    *pgxpool.Pool
	pseud *ingest.Pseudonymizer
}

func newPrivacyFixture(t *testing.T) *privacyFixture {
	t.Helper()
	if testing.Short() {
		t.Skip("drives the real pipeline")
	}
	f := newFixture(t)
	f.env["LIFT_PSEUDONYMIZE_KEY"] = testPseudonymKey
	f.env["LIFT_INGEST_CONSUMERS"] = "1"
	f.env["LIFT_INGEST_BATCH_WAIT"] = "100ms"
	// One segment engine shard, so its checkpoint holds every user; a quick
	// rebuild of the new segment from ClickHouse.
	f.env["LIFT_SEGMENT_SHARDS"] = "1"
	f.env["LIFT_SEGMENT_REBUILD_DELAY"] = "1s"
	f.env["LIFT_CLICKHOUSE_ADDR"], f.env["LIFT_CLICKHOUSE_DB"] = testenv.ClickHouse(t)
	pf := &privacyFixture{fixture: f, ch: openFixtureClickHouse(t, f)}
	pool, err := pgxpool.New(context.Background(), f.env["LIFT_POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	pf.pg = pool
	if pf.pseud, err = ingest.NewPseudonymizer([]byte(testPseudonymKey)); err != nil {
		t.Fatal(err)
	}
	return pf
}

// openFixtureClickHouse opens the fixture's ClickHouse database, closed at the end.
func openFixtureClickHouse(t *testing.T, f *fixture) *sql.DB {
	t.Helper()
	ch := migrations.OpenClickHouse(f.env["LIFT_CLICKHOUSE_ADDR"], f.env["LIFT_CLICKHOUSE_DB"])
	t.Cleanup(func() { ch.Close() })
	return ch
}

// configure creates the experiment, segment and flag and waits until the segment
// engine runs the segment.
func (pf *privacyFixture) configure(t *testing.T) {
	t.Helper()
	s := pf.server
	s.want(201, "POST", "/api/v1/experiments", `{"key":"hero","type":"ab",
		"variants":[{"key":"control","weight":0.5},{"key":"bold","weight":0.5}]}`, nil)
	s.want(200, "POST", "/api/v1/experiments/hero/start", "", nil)
	s.want(201, "POST", "/api/v1/segments", `{"key":"viewers","kind":"behavioral",
		"rule":{"event":"product_view","count_gte":1,"within":"1h"},"ttl":"1h"}`, nil)
	s.want(201, "POST", "/api/v1/flags", `{"key":"offer","type":"string","default":"none",
		"rules":[{"segment":"viewers","value":"vip","variant":"vip"}]}`, nil)
	testenv.Eventually(t, 15*time.Second, "the engine to run viewers", func() bool {
		var defs string
		_ = pf.pg.QueryRow(context.Background(), "SELECT definitions FROM segment_checkpoints WHERE shard = 0").Scan(&defs)
		return strings.Contains(defs, "viewers") && !strings.Contains(defs, "rebuilding")
	})
}

// count runs a count query on ClickHouse.
func (pf *privacyFixture) count(t *testing.T, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := pf.ch.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// chTables lists the ClickHouse tables that store rows (not views), with their
// String columns.
func (pf *privacyFixture) chTables(t *testing.T) map[string][]string {
	t.Helper()
	rows, err := pf.ch.Query(`SELECT c.table, c.name, c.type FROM system.columns AS c
		ANY INNER JOIN (SELECT name AS table, engine FROM system.tables WHERE database = currentDatabase()) AS tb USING table
		WHERE c.database = currentDatabase() AND tb.engine NOT IN ('View', 'MaterializedView')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var table, col, typ string
		if err := rows.Scan(&table, &col, &typ); err != nil {
			t.Fatal(err)
		}
		if _, ok := out[table]; !ok {
			out[table] = nil
		}
		if typ == "String" {
			out[table] = append(out[table], col)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// findInClickHouse returns "table.column: n rows" for every String column of every
// table holding needle anywhere.
func (pf *privacyFixture) findInClickHouse(t *testing.T, needles ...string) []string {
	t.Helper()
	var found []string
	for table, cols := range pf.chTables(t) {
		for _, col := range cols {
			for _, needle := range needles {
				n := pf.count(t, fmt.Sprintf("SELECT count() FROM `%s` WHERE positionCaseInsensitive(`%s`, ?) > 0", table, col), needle)
				if n > 0 {
					found = append(found, fmt.Sprintf("%s.%s holds %q in %d rows", table, col, needle, n))
				}
			}
		}
	}
	return found
}

// TestConsentMatrixEndToEnd: the four combinations of consent on the real services,
// with pseudonymisation and scrubbing on. For each user: what /v1/decide serves, and
// what ends up in ClickHouse (events, exposures) and in the segment engine
// (memberships in Postgres).
func TestConsentMatrixEndToEnd(t *testing.T) {
	t.Parallel()
	pf := newPrivacyFixture(t)
	pf.start(t)
	pf.configure(t)

	type expect struct {
		personalised bool // experiments and behavioural segments apply
		events       bool // events stored in ClickHouse
		exposures    bool // exposures stored in ClickHouse
		member       bool // the segment engine saw the events
	}
	matrix := []struct {
		user    string
		consent string
		want    expect
	}{
		{"alice@example.com", `{"analytics":true,"personalization":true}`, expect{true, true, true, true}},
		{"bob@example.com", `{"analytics":true,"personalization":false}`, expect{false, true, false, false}},
		{"carol@example.com", `{"analytics":false,"personalization":true}`, expect{true, false, false, true}},
		{"dave@example.com", `{"analytics":false,"personalization":false}`, expect{false, false, false, false}},
	}
	for _, m := range matrix {
		body := fmt.Sprintf(`{"consent":%s,"events":[{"type":"product_view","user_id":%q,
			"properties":{"sku":"x1","email":%q,"search":"mail me at %s","phone_note":"call +44 20 7946 0958","client":"from 203.0.113.9"}}]}`,
			m.consent, m.user, m.user, m.user)
		var got struct{ Accepted int }
		pf.client.want(202, "POST", "/v1/events", body, &got, "X-Forwarded-For", "203.0.113.77", "X-Real-IP", "203.0.113.78")
		if got.Accepted != 1 {
			t.Errorf("%s: accepted %d", m.user, got.Accepted)
		}
	}
	decide := func(user, consent string) decideResp {
		var r decideResp
		pf.client.want(200, "POST", "/v1/decide", fmt.Sprintf(`{"user_id":%q,"consent":%s}`, user, consent), &r,
			"X-Forwarded-For", "203.0.113.77")
		return r
	}
	for _, m := range matrix {
		if m.want.member {
			testenv.Eventually(t, 15*time.Second, "the vip offer for a member", func() bool { return string(decide(m.user, m.consent).Decisions["offer"].Value) == `"vip"` })
		}
	}
	for _, m := range matrix {
		r := decide(m.user, m.consent)
		hero, offer := r.Decisions["hero"], r.Decisions["offer"]
		if r.UserID != m.user {
			t.Errorf("%s: answer names %q", m.user, r.UserID)
		}
		if m.want.personalised {
			if hero.Reason != "split" || string(offer.Value) != `"vip"` {
				t.Errorf("%s (%s): hero %+v, offer %s; want an assignment and the segment's offer", m.user, m.consent, hero, offer.Value)
			}
		} else if hero.Reason != "not_eligible" || hero.Variant != "control" || string(offer.Value) != `"none"` {
			t.Errorf("%s (%s): hero %+v, offer %s; want the defaults", m.user, m.consent, hero, offer.Value)
		}
	}
	// A last event and exposure with full consent: once they are stored, everything
	// before them was handled (one consumer, in order).
	pf.client.want(202, "POST", "/v1/events", `{"events":[{"type":"click","user_id":"last"}]}`, nil)
	pf.client.want(200, "POST", "/v1/decide", `{"user_id":"last"}`, nil)
	testenv.Eventually(t, 30*time.Second, "the last user's event and exposure in ClickHouse", func() bool {
		last := pf.pseud.Pseudonymize("last")
		return pf.count(t, "SELECT count() FROM events WHERE user_id = ?", last) == 1 &&
			pf.count(t, "SELECT count() FROM exposures WHERE user_id = ?", last) == 1
	})

	for _, m := range matrix {
		id := pf.pseud.Pseudonymize(m.user)
		events := pf.count(t, "SELECT count() FROM events FINAL WHERE user_id = ?", id)
		exposures := pf.count(t, "SELECT count() FROM exposures FINAL WHERE user_id = ?", id)
		var members int
		if err := pf.pg.QueryRow(context.Background(), "SELECT count(*) FROM segment_memberships WHERE user_id = $1 AND member", id).Scan(&members); err != nil {
			t.Fatal(err)
		}
		got := expect{m.want.personalised, events == 1, exposures >= 1, members == 1}
		if got != m.want {
			t.Errorf("%s (%s): events %d, exposures %d, memberships %d; want %+v", m.user, m.consent, events, exposures, members, m.want)
		}
		// Stable pseudonyms: the exposure logged by /v1/decide and the event from
		// /v1/events name the same user.
		if m.want.events && m.want.exposures {
			joined := pf.count(t, `SELECT count() FROM exposures AS x ANY INNER JOIN (SELECT user_id FROM events) AS e USING user_id WHERE x.user_id = ?`, id)
			if joined == 0 {
				t.Errorf("%s: the exposure and the event carry different ids", m.user)
			}
		}
	}

	// Scrubbed properties are gone, the others are kept.
	var props string
	if err := pf.ch.QueryRow("SELECT properties FROM events WHERE user_id = ?", pf.pseud.Pseudonymize("alice@example.com")).Scan(&props); err != nil {
		t.Fatal(err)
	}
	if props != `{"sku":"x1"}` {
		t.Errorf("stored properties %s, want only sku", props)
	}
	// No raw id, e-mail, phone number or IP address anywhere in ClickHouse.
	var needles []string
	for _, m := range matrix {
		needles = append(needles, m.user, strings.Split(m.user, "@")[0])
	}
	needles = append(needles, "7946", "203.0.113", "example.com")
	if found := pf.findInClickHouse(t, needles...); len(found) > 0 {
		t.Errorf("personal data in ClickHouse:\n%s", strings.Join(found, "\n"))
	}
	// Nor in the segment engine's memberships and checkpoint.
	var n int
	var checkpoint []byte
	if err := pf.pg.QueryRow(context.Background(), "SELECT count(*) FROM segment_memberships WHERE user_id LIKE '%@%'").Scan(&n); err != nil || n != 0 {
		t.Errorf("raw ids in segment_memberships: %d (%v)", n, err)
	}
	// The engine checkpoints every few seconds: wait for one with the users in it.
	testenv.Eventually(t, 15*time.Second, "a checkpoint holding alice", func() bool {
		err := pf.pg.QueryRow(context.Background(), "SELECT state FROM segment_checkpoints WHERE shard = 0").Scan(&checkpoint)
		return err == nil && strings.Contains(string(checkpoint), pf.pseud.Pseudonymize("alice@example.com"))
	})
	for _, needle := range needles {
		if strings.Contains(string(checkpoint), needle) {
			t.Errorf("checkpoint holds %q", needle)
		}
	}

	// The counts: scrubbed properties by reason, events left out by purpose.
	metrics := scrape(t, pf.server.base)
	for _, want := range []string{
		`lift_properties_scrubbed_total{reason="property"} 3`, `lift_properties_scrubbed_total{reason="email"} 3`,
		`lift_properties_scrubbed_total{reason="phone"} 3`, `lift_properties_scrubbed_total{reason="ip"} 3`,
		`lift_events_unconsented_total{purpose="analytics",type="product_view"} 2`,
		`lift_events_unconsented_total{purpose="personalization",type="product_view"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

type jobResp struct {
	ID      string
	Subject string
	Status  string
	URL     string
	Error   string
	Steps   []struct {
		Name   string
		Done   bool
		Detail string
		Tables []struct {
			Table     string
			Mutation  string
			Done      bool
			Remaining uint64
		}
	}
}

// userRows counts the rows of the given ids in every ClickHouse table with a
// user_id column.
func (pf *privacyFixture) userRows(t *testing.T, ids ...string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for table, cols := range pf.chTables(t) {
		if !slices.Contains(cols, "user_id") {
			continue
		}
		var in []string
		for _, id := range ids {
			in = append(in, "'"+id+"'")
		}
		out[table] = pf.count(t, fmt.Sprintf("SELECT count() FROM `%s` WHERE user_id IN (%s)", table, strings.Join(in, ",")))
	}
	return out
}

// seedTwoUsers sends events (with an $identify linking an anonymous visitor to
// alice, sent by the application's backend with a server key: a link export and
// erasure follow), decisions (exposures) and enough product views for the
// behavioural segment, for alice and bob, and waits until all of it is stored.
func (pf *privacyFixture) seedTwoUsers(t *testing.T) {
	t.Helper()
	pf.server.want(201, "POST", "/api/v1/saved-groups", `{"key":"beta","values":["alice@example.com","bob@example.com"]}`, nil)
	for _, u := range []string{"alice@example.com", "bob@example.com", "anon-alice"} {
		pf.client.want(202, "POST", "/v1/events", fmt.Sprintf(`{"events":[
			{"type":"product_view","user_id":%[1]q,"properties":{"sku":"x1"}},
			{"type":"purchase","user_id":%[1]q,"value":12.5}]}`, u), nil)
		pf.client.want(200, "POST", "/v1/decide", fmt.Sprintf(`{"user_id":%q}`, u), nil)
	}
	pf.server.want(202, "POST", "/v1/events", `{"events":[{"type":"$identify","user_id":"alice@example.com","properties":{"anonymous_id":"anon-alice"}}]}`, nil)
	alice, bob, anon := pf.pseud.Pseudonymize("alice@example.com"), pf.pseud.Pseudonymize("bob@example.com"), pf.pseud.Pseudonymize("anon-alice")
	testenv.Eventually(t, 30*time.Second, "alice's, bob's and the anonymous rows", func() bool {
		rows := pf.userRows(t, alice)
		return rows["events"] == 3 && rows["exposures"] == 1 && rows["first_exposures"] == 1 && rows["segment_changes"] == 1 &&
			pf.userRows(t, bob)["segment_changes"] == 1 && pf.userRows(t, anon)["segment_changes"] == 1
	})
	testenv.Eventually(t, 15*time.Second, "a checkpoint holding alice, anon and bob", func() bool {
		var cp []byte
		err := pf.pg.QueryRow(context.Background(), "SELECT state FROM segment_checkpoints WHERE shard = 0").Scan(&cp)
		return err == nil && strings.Contains(string(cp), alice) && strings.Contains(string(cp), anon) && strings.Contains(string(cp), bob)
	})
}

// TestExportEndToEnd: the export holds what was stored for the user (their rows in
// every table, the anonymous visitor's linked by $identify, memberships, the saved
// group naming them) and nothing of anyone else.
func TestExportEndToEnd(t *testing.T) {
	t.Parallel()
	pf := newPrivacyFixture(t)
	pf.start(t)
	pf.configure(t)
	pf.seedTwoUsers(t)
	alice, anon := pf.pseud.Pseudonymize("alice@example.com"), pf.pseud.Pseudonymize("anon-alice")

	var x struct {
		UserID             string `json:"user_id"`
		IDs                []string
		ClickHouse         map[string][]map[string]any
		SegmentMemberships []map[string]any `json:"segment_memberships"`
		Configuration      []string
	}
	resp := pf.server.do("GET", "/api/v1/users/"+url.PathEscape("alice@example.com")+"/export", "", &x)
	if resp.StatusCode != 200 {
		t.Fatalf("export: %d", resp.StatusCode)
	}
	raw, _ := io.ReadAll(resp.Body)
	if x.UserID != "alice@example.com" || !slices.Equal(x.IDs, []string{"alice@example.com", alice, anon}) {
		t.Errorf("export of %q under ids %v", x.UserID, x.IDs)
	}
	counts := map[string]int{}
	for table, rows := range x.ClickHouse {
		counts[table] = len(rows)
		for _, r := range rows {
			if r["user_id"] != alice && r["user_id"] != anon {
				t.Errorf("%s row of %v", table, r["user_id"])
			}
		}
	}
	// alice: view, purchase, $identify; the anonymous visitor: view, purchase.
	want := map[string]int{"events": 5, "exposures": 2, "first_exposures": 2, "segment_changes": 2}
	for table, n := range want {
		if counts[table] != n {
			t.Errorf("export has %d rows of %s, want %d (all: %v)", counts[table], table, n, counts)
		}
	}
	if len(x.SegmentMemberships) != 2 || !slices.Equal(x.Configuration, []string{"saved_group/beta"}) {
		t.Errorf("memberships %v, configuration %v", x.SegmentMemberships, x.Configuration)
	}
	var purchase map[string]any
	for _, r := range x.ClickHouse["events"] {
		if r["type"] == "purchase" && r["user_id"] == alice {
			purchase = r
		}
	}
	if purchase["value"] != 12.5 || purchase["event_id"] == nil || purchase["ts"] == nil {
		t.Errorf("purchase row %v", purchase)
	}
	for _, other := range []string{"bob", pf.pseud.Pseudonymize("bob@example.com")} {
		if strings.Contains(string(raw), other) {
			t.Errorf("export mentions %q", other)
		}
	}
	// Client keys cannot export; unknown users export empty.
	pf.client.want(403, "GET", "/api/v1/users/alice/export", "", nil)
	var empty struct{ ClickHouse map[string][]any }
	pf.server.want(200, "GET", "/api/v1/users/nobody/export", "", &empty)
	for table, rows := range empty.ClickHouse {
		if len(rows) != 0 {
			t.Errorf("nobody has rows in %s", table)
		}
	}
}

// outboxUsers counts the webhook outbox's rows per user, "(dead)" after the user for
// dead letters.
func (pf *privacyFixture) outboxUsers(t *testing.T) map[string]int {
	t.Helper()
	rows, err := pf.pg.Query(context.Background(), "SELECT user_id || CASE WHEN dead_at IS NULL THEN '' ELSE ' (dead)' END FROM segment_webhook_outbox")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			t.Fatal(err)
		}
		out[u]++
	}
	return out
}

// TestErasureEndToEnd: DELETE /api/v1/users/{id} removes every row of the user (and
// of the anonymous visitor their $identify links) from every ClickHouse table on
// 18.16, their memberships and segment engine state, their segment changes waiting
// in the webhook outbox and its dead letters, their place in saved groups, leaves
// the other user untouched, writes no id into the audit log, and completes after
// lift is restarted in the middle of the job without starting its mutations again.
func TestErasureEndToEnd(t *testing.T) {
	t.Parallel()
	pf := newPrivacyFixture(t)
	// Mutations are checked every 3 s: a window in which the job is certainly
	// between starting its mutations and seeing them done.
	pf.env["LIFT_ERASURE_POLL"] = "3s"
	p := pf.start(t)
	pf.configure(t)
	// A webhook whose receiver never answers: every segment change stays in the
	// outbox, retried.
	pf.server.want(201, "POST", "/api/v1/webhooks", `{"key":"crm","url":"https://crm.example.invalid/hook"}`, nil)
	pf.seedTwoUsers(t)
	alice, bob, anon := pf.pseud.Pseudonymize("alice@example.com"), pf.pseud.Pseudonymize("bob@example.com"), pf.pseud.Pseudonymize("anon-alice")
	bobBefore := pf.userRows(t, bob)
	testenv.Eventually(t, 15*time.Second, "one outbox change for each user", func() bool {
		o := pf.outboxUsers(t)
		return o[alice]+o[alice+" (dead)"] == 1 && o[anon]+o[anon+" (dead)"] == 1 && o[bob]+o[bob+" (dead)"] == 1
	})
	// alice's change was given up on: a dead letter.
	if _, err := pf.pg.Exec(context.Background(), "UPDATE segment_webhook_outbox SET dead_at = now() WHERE user_id = $1", alice); err != nil {
		t.Fatal(err)
	}
	var auditBefore int64
	if err := pf.pg.QueryRow(context.Background(), "SELECT coalesce(max(id), 0) FROM audit_log").Scan(&auditBefore); err != nil {
		t.Fatal(err)
	}

	var job jobResp
	resp := pf.server.do("DELETE", "/api/v1/users/"+url.PathEscape("alice@example.com"), "", &job)
	if resp.StatusCode != 202 || job.ID == "" || resp.Header.Get("Location") != job.URL {
		t.Fatalf("erase: %d %+v, Location %q", resp.StatusCode, job, resp.Header.Get("Location"))
	}
	var again jobResp
	pf.server.want(202, "DELETE", "/api/v1/users/"+url.PathEscape("alice@example.com"), "", &again)
	if again.ID != job.ID {
		t.Errorf("a second request opened job %s besides %s", again.ID, job.ID)
	}
	pf.client.want(403, "DELETE", "/api/v1/users/bob", "", nil)

	// Stop lift once the ClickHouse mutations are started and before they are seen done.
	started := func(j jobResp) int {
		n := 0
		for _, st := range j.Steps {
			for _, tp := range st.Tables {
				if tp.Mutation != "" {
					n++
				}
			}
		}
		return n
	}
	testenv.Eventually(t, 60*time.Second, "the erasure job to start", func() bool {
		pf.server.want(200, "GET", job.URL, "", &job)
		return started(job) > 0
	})
	p.stop()
	var status string
	if err := pf.pg.QueryRow(context.Background(), "SELECT status FROM erasure_jobs WHERE id = $1", job.ID).Scan(&status); err != nil || status != "running" {
		t.Fatalf("after the stop the job is %q (%v); the test wanted to interrupt it", status, err)
	}
	t.Logf("stopped lift with %d mutations started", started(job))

	pf.start(t)
	testenv.Eventually(t, 120*time.Second, "the erasure job to finish", func() bool {
		pf.server.want(200, "GET", job.URL, "", &job)
		return job.Status == "done"
	})
	for _, st := range job.Steps {
		t.Logf("step %s: %s", st.Name, st.Detail)
	}
	for table, n := range pf.userRows(t, alice, anon, "alice@example.com", "anon-alice") {
		if n != 0 {
			t.Errorf("%s still holds %d rows of the erased user", table, n)
		}
	}
	if got := pf.userRows(t, bob); !maps.Equal(got, bobBefore) {
		t.Errorf("bob's rows changed: %v, before %v", got, bobBefore)
	}
	// Every mutation was started once, restart or not.
	if n := pf.count(t, "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND position(command, ?) > 0",
		"lift-erasure:"+job.ID+":1"); n != uint64(len(job.Steps[3].Tables)) || n < 4 {
		t.Errorf("%d mutations for %d tables", n, len(job.Steps[3].Tables))
	}
	// Mutation commands carry digests, never ids.
	if n := pf.count(t, "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND (position(command, 'alice') > 0 OR position(command, ?) > 0)", alice); n != 0 {
		t.Errorf("%d mutation commands name the user", n)
	}

	ctx := context.Background()
	var memberships, pendingErasures int
	var userIDsGone bool
	var cp []byte
	_ = pf.pg.QueryRow(ctx, "SELECT count(*) FROM segment_memberships WHERE user_id IN ($1, $2)", alice, anon).Scan(&memberships)
	_ = pf.pg.QueryRow(ctx, "SELECT count(*) FROM segment_erasures").Scan(&pendingErasures)
	_ = pf.pg.QueryRow(ctx, "SELECT user_ids IS NULL FROM erasure_jobs WHERE id = $1", job.ID).Scan(&userIDsGone)
	_ = pf.pg.QueryRow(ctx, "SELECT state FROM segment_checkpoints WHERE shard = 0").Scan(&cp)
	if memberships != 0 || pendingErasures != 0 || !userIDsGone {
		t.Errorf("memberships %d, pending engine erasures %d, job forgot the ids: %v", memberships, pendingErasures, userIDsGone)
	}
	if strings.Contains(string(cp), alice) || strings.Contains(string(cp), anon) || !strings.Contains(string(cp), bob) {
		t.Error("the checkpoint still holds the erased user, or lost the other")
	}
	var beta struct{ Values []string }
	pf.server.want(200, "GET", "/api/v1/saved-groups/beta", "", &beta)
	if !slices.Equal(beta.Values, []string{"bob@example.com"}) {
		t.Errorf("saved group beta: %v", beta.Values)
	}
	// The decision processes dropped the membership from memory.
	var r decideResp
	pf.client.want(200, "POST", "/v1/decide", `{"user_id":"alice@example.com","keys":["offer"]}`, &r)
	if string(r.Decisions["offer"].Value) != `"none"` {
		t.Errorf("erased user still served the segment's offer: %s", r.Decisions["offer"].Value)
	}
	// The audit log records the request and the completion, without the id.
	var audit struct {
		Items []struct {
			Actor, Action string
			After         json.RawMessage
		}
	}
	pf.server.want(200, "GET", "/api/v1/audit?entity=erasure&key="+job.ID, "", &audit)
	if len(audit.Items) != 2 || audit.Items[0].Action != "complete" || audit.Items[1].Action != "request" ||
		!strings.HasPrefix(audit.Items[1].Actor, "key:test server#") {
		t.Errorf("audit %+v", audit.Items)
	}
	for _, a := range audit.Items {
		if strings.Contains(string(a.After), "alice") {
			t.Errorf("audit entry names the user: %s", a.After)
		}
	}
	// The outbox kept bob's change only.
	if o := pf.outboxUsers(t); o[alice]+o[alice+" (dead)"]+o[anon]+o[anon+" (dead)"] != 0 || o[bob]+o[bob+" (dead)"] != 1 {
		t.Errorf("webhook outbox after the erasure: %v", o)
	}
	// Nothing the erasure wrote to the audit log (its own entries, the saved
	// group's change) names the user, as given or as stored: only keyed digests.
	rows, err := pf.pg.Query(ctx, "SELECT entity, action, coalesce(before::text, ''), coalesce(after::text, '') FROM audit_log WHERE id > $1", auditBefore)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var entity, action, before, after string
		if err := rows.Scan(&entity, &action, &before, &after); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"alice@example.com", "anon-alice", alice, anon} {
			if strings.Contains(before+after, id) {
				t.Errorf("audit entry %s %s names %s: before %s, after %s", entity, action, id, before, after)
			}
		}
	}
	if !strings.HasPrefix(job.Subject, "sub_") {
		t.Errorf("job subject %q", job.Subject)
	}
}
