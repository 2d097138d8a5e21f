package dashboard_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
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

func openCH(t *testing.T, addr, db string) *sql.DB {
	t.Helper()
	conn := migrations.OpenClickHouse(addr, db)
	t.Cleanup(func() { conn.Close() })
	return conn
}
