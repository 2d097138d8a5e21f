package dashboard_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/pgstore"
	ingestpg "github.com/liftlab/lift/ingest/pgstore"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/web"
	"github.com/liftlab/lift/web/auth"
	authstore "github.com/liftlab/lift/web/auth/pgstore"
	"github.com/liftlab/lift/web/dashboard"
	"github.com/liftlab/lift/web/session"
)

// harness is the whole HTTP handler (API and dashboard) on a fresh database.
type harness struct {
	t       testing.TB
	url     string
	handler http.Handler
	svc     *experiments.Service
	users   *authstore.Store
	pool    *pgxpool.Pool
}

const password = "correct horse battery"

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessWith(t, nil)
}

// newHarnessWith builds the harness with the results reader that results returns for
// the harness's configuration store (nil: no results reader), and the event types of
// its database.
func newHarnessWith(t testing.TB, results func(experiments.Store) dashboard.ResultsReader) *harness {
	t.Helper()
	return newHarnessDeps(t, func(store experiments.Store, pool *pgxpool.Pool, d *dashboard.Deps) {
		d.EventTypes = ingestpg.New(pool)
		if results != nil {
			d.Results = results(store)
		}
	})
}

// newHarnessDeps builds the harness after configure has filled in the optional
// dashboard dependencies from the harness's configuration store and database.
func newHarnessDeps(t testing.TB, configure func(experiments.Store, *pgxpool.Pool, *dashboard.Deps)) *harness {
	t.Helper()
	return newHarnessWeb(t, configure, nil)
}

// newHarnessWeb is newHarnessDeps with the server's own settings changed by web (nil:
// none changed).
func newHarnessWeb(t testing.TB, configure func(experiments.Store, *pgxpool.Pool, *dashboard.Deps), webDeps func(*web.Deps)) *harness {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store, ks := pgstore.New(pool), authstore.New(pool)
	svc := experiments.NewService(store)
	sessions := session.New(ks, ks, 0)
	log := slog.New(slog.DiscardHandler)
	// A results query that a loaded test machine makes slow must not read as the
	// event store being down: the 5 s default is for people, not for -race runs.
	deps := dashboard.Deps{Log: log, Config: svc, Keys: ks, Users: ks, Sessions: sessions, ResultsTimeout: 2 * time.Minute}
	if configure != nil {
		configure(store, pool, &deps)
	}
	wd := web.Deps{
		Log: log, Snapshots: experiments.NewLive(store), Keys: auth.NewKeyRing(ks), Manager: svc, KeyStore: ks,
		Ready:    func(context.Context) map[string]error { return nil },
		Registry: prometheus.NewRegistry(), MaxBodyBytes: 1 << 20, Sessions: sessions,
		Dashboard: dashboard.New(deps),
	}
	if webDeps != nil {
		webDeps(&wd)
	}
	h := web.New(wd)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &harness{t: t, url: srv.URL, handler: h, svc: svc, users: ks, pool: pool}
}

func (h *harness) user(email string, role auth.Role) {
	h.t.Helper()
	if _, err := auth.CreateUser(context.Background(), h.users, email, role, password, "test"); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) create(kind experiments.Kind, doc string) {
	h.t.Helper()
	if _, err := h.svc.Create(context.Background(), "test", kind, []byte(doc)); err != nil {
		h.t.Fatalf("create %s: %v", kind, err)
	}
}

// browser is a cookie-keeping client that does not follow redirects, so tests see them.
type browser struct {
	h    *harness
	c    *http.Client
	csrf string
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{h: h, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(req *http.Request) page {
	b.h.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, body: string(data), location: resp.Header.Get("Location"), header: resp.Header}
	if m := csrfInput.FindStringSubmatch(p.body); m != nil {
		b.csrf = m[1]
	}
	return p
}

func (b *browser) get(path string) page {
	req, _ := http.NewRequest(http.MethodGet, b.h.url+path, nil)
	return b.do(req)
}

// post submits a form with the page's CSRF token unless the form sets csrf itself.
func (b *browser) post(path string, form url.Values, headers ...string) page {
	if _, set := form["csrf"]; !set {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, b.h.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

func (b *browser) login(email string) {
	b.h.t.Helper()
	b.get("/login")
	p := b.post("/login", url.Values{"email": {email}, "password": {password}})
	if p.status != http.StatusSeeOther {
		b.h.t.Fatalf("login %s: status %d\n%s", email, p.status, p.body)
	}
	b.get("/experiments") // picks up a CSRF token for the next form
}

func (h *harness) signedIn(email string, role auth.Role) *browser {
	h.user(email, role)
	b := h.browser()
	b.login(email)
	return b
}

func hasTestID(body, id string) bool { return strings.Contains(body, `data-testid="`+id+`"`) }
