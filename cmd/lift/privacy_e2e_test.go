package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
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
	f.env["LIFT_CLICKHOUSE_ADDR"], f.env["LIFT_CLICKHOUSE_DB"] = testenv.ClickHouse(t)
	pf := &privacyFixture{fixture: f}
	pf.ch = migrations.OpenClickHouse(f.env["LIFT_CLICKHOUSE_ADDR"], f.env["LIFT_CLICKHOUSE_DB"])
	t.Cleanup(func() { pf.ch.Close() })
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
	eventually(t, 15*time.Second, func() bool {
		var defs string
		_ = pf.pg.QueryRow(context.Background(), "SELECT definitions FROM segment_checkpoints WHERE shard = 0").Scan(&defs)
		return strings.Contains(defs, "viewers")
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
			eventually(t, 15*time.Second, func() bool { return string(decide(m.user, m.consent).Decisions["offer"].Value) == `"vip"` })
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
	eventually(t, 30*time.Second, func() bool {
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
	eventually(t, 15*time.Second, func() bool {
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
