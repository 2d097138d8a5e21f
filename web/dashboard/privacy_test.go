package dashboard_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest/gdpr"
	gdprch "github.com/liftlab/lift/ingest/gdpr/chstore"
	gdprpg "github.com/liftlab/lift/ingest/gdpr/pgstore"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
	"github.com/liftlab/lift/web/auth"
	"github.com/liftlab/lift/web/dashboard"
)

type privacyDeps struct {
	*gdpr.Retention
	*gdpr.Service
}

// The privacy settings page on real Postgres and ClickHouse: everyone sees the
// configuration and every table's retention; admins change retention (audited) and
// see erasure requests.
func TestPrivacyPage(t *testing.T) {
	t.Parallel()
	addr, db := testenv.ClickHouse(t)
	events, err := gdprch.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	h := newHarnessDeps(t, func(_ experiments.Store, pool *pgxpool.Pool, d *dashboard.Deps) {
		jobs := gdprpg.New(pool)
		d.Privacy = privacyDeps{&gdpr.Retention{Partitions: events, Policies: jobs, DefaultMonths: 13}, &gdpr.Service{Jobs: jobs}}
		d.PrivacyConfig = dashboard.PrivacyConfig{Pseudonymized: true, ScrubPatterns: []string{"email", "card"}, ScrubProperties: []string{"email"}}
	})
	// Tables appear once they hold rows; an empty database shows none, so put one in.
	conn := openCH(t, addr, db)
	if _, err := conn.Exec("INSERT INTO segment_changes (ts, user_id, segment, kind, expires_at, recorded_at) SELECT now(), 'u', 's', 'enter', now(), now()"); err != nil {
		t.Fatal(err)
	}

	viewer := h.signedIn("viewer@example.com", auth.Viewer)
	p := viewer.get("/settings/privacy")
	if p.status != http.StatusOK || !hasTestID(p.body, "retention-segment_changes") || !strings.Contains(p.body, "pseudonymised at the edge") ||
		!strings.Contains(p.body, "email, card") || !strings.Contains(p.body, `aria-current="page" href="/settings/privacy"`) {
		t.Fatalf("viewer page: %d\n%s", p.status, p.body)
	}
	if hasTestID(p.body, "months-segment_changes") || hasTestID(p.body, "erasures") {
		t.Error("a viewer gets the admin's forms")
	}
	if p := viewer.post("/settings/privacy/retention/segment_changes", url.Values{"months": {"6"}}); p.status != http.StatusForbidden {
		t.Errorf("viewer change: %d", p.status)
	}

	admin := h.signedIn("admin@example.com", auth.Admin)
	p = admin.get("/settings/privacy")
	if !hasTestID(p.body, "months-segment_changes") || !hasTestID(p.body, "erasures") {
		t.Fatalf("admin page lacks the forms:\n%s", p.body)
	}
	p = admin.post("/settings/privacy/retention/segment_changes", url.Values{"months": {"6"}})
	if p.status != http.StatusOK || !hasTestID(p.body, "retention-saved") || !strings.Contains(p.body, `value="6"`) {
		t.Fatalf("save: %d\n%s", p.status, p.body)
	}
	if p := admin.post("/settings/privacy/retention/segment_changes", url.Values{"months": {"-3"}}); p.status != http.StatusUnprocessableEntity || !hasTestID(p.body, "retention-error") {
		t.Errorf("negative months: %d", p.status)
	}
	if p := admin.post("/settings/privacy/retention/nope", url.Values{"months": {"6"}}); p.status != http.StatusNotFound {
		t.Errorf("unknown table: %d", p.status)
	}
	var actor string
	if err := h.pool.QueryRow(context.Background(), "SELECT actor FROM audit_log WHERE entity = 'retention' AND entity_key = 'segment_changes'").Scan(&actor); err != nil || actor != "user:admin@example.com" {
		t.Errorf("audit actor %q (%v)", actor, err)
	}
}

// An admin looks a user up on the privacy page: linked ids a server key made are
// erased with the user, those a client key made are listed unticked, and erased only
// when ticked; the audit log records the confirmation by keyed digest.
func TestPrivacyErasureForm(t *testing.T) {
	t.Parallel()
	addr, db := testenv.ClickHouse(t)
	events, err := gdprch.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	h := newHarnessDeps(t, func(_ experiments.Store, pool *pgxpool.Pool, d *dashboard.Deps) {
		jobs := gdprpg.New(pool)
		d.Privacy = privacyDeps{&gdpr.Retention{Partitions: events, Policies: jobs, DefaultMonths: 13},
			&gdpr.Service{Jobs: jobs, Events: events, Subjects: &gdpr.Subjects{Key: jobs.SubjectKey}, Audit: jobs}}
	})
	conn := openCH(t, addr, db)
	for anon, source := range map[string]string{"victim": "client", "mallory-phone": "server"} {
		if _, err := conn.Exec(`INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties, source)
			SELECT generateUUIDv4(), '$identify', 'mallory', now(), now(), 0, '{"anonymous_id":"` + anon + `"}', '` + source + `'`); err != nil {
			t.Fatal(err)
		}
	}
	viewer := h.signedIn("viewer@example.com", auth.Viewer)
	if p := viewer.post("/settings/privacy/erasure", url.Values{"user_id": {"mallory"}, "action": {"lookup"}}); p.status != http.StatusForbidden {
		t.Errorf("viewer lookup: %d", p.status)
	}
	admin := h.signedIn("admin@example.com", auth.Admin)
	p := admin.post("/settings/privacy/erasure", url.Values{"user_id": {"mallory"}, "action": {"lookup"}})
	if p.status != http.StatusOK || !hasTestID(p.body, "include-victim") || !hasTestID(p.body, "erase-submit") ||
		!strings.Contains(p.body, "mallory-phone") || !strings.Contains(p.body, "a client key (public)") {
		t.Fatalf("lookup: %d\n%s", p.status, p.body)
	}
	if strings.Contains(p.body, `value="victim" checked`) {
		t.Error("the client key's link is ticked in advance")
	}
	p = admin.post("/settings/privacy/erasure", url.Values{"user_id": {"mallory"}, "action": {"erase"}, "include": {"nobody"}})
	if p.status != http.StatusUnprocessableEntity || !hasTestID(p.body, "erase-error") || !strings.Contains(p.body, "include") {
		t.Errorf("include of an id not linked: %d", p.status)
	}
	p = admin.post("/settings/privacy/erasure", url.Values{"user_id": {"mallory"}, "action": {"erase"}, "include": {"victim"}})
	if p.status != http.StatusOK || !hasTestID(p.body, "erase-started") {
		t.Fatalf("erase: %d\n%s", p.status, p.body)
	}
	var ids, confirmed []string
	var after string
	ctx := context.Background()
	if err := h.pool.QueryRow(ctx, "SELECT user_ids, confirmed_links FROM erasure_jobs").Scan(&ids, &confirmed); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"mallory", "mallory-phone", "victim"}) || len(confirmed) != 1 || !strings.HasPrefix(confirmed[0], "sub_") {
		t.Errorf("job ids %v, confirmed links %v", ids, confirmed)
	}
	if err := h.pool.QueryRow(ctx, "SELECT after::text FROM audit_log WHERE entity = 'erasure' AND action = 'request'").Scan(&after); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(after, "victim") || strings.Contains(after, "mallory") || !strings.Contains(after, confirmed[0]) {
		t.Errorf("request audit entry %s", after)
	}
}

func openCH(t *testing.T, addr, db string) *sql.DB {
	t.Helper()
	conn := migrations.OpenClickHouse(addr, db)
	t.Cleanup(func() { conn.Close() })
	return conn
}
