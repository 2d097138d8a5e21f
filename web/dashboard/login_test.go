package dashboard_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/liftlab/lift/web"
	"github.com/liftlab/lift/web/auth"
)

// behindProxy is a harness whose server trusts the test client (127.0.0.1) as its
// reverse proxy, so requests can say which client they forward in X-Forwarded-For.
func behindProxy(t *testing.T) *harness {
	loopback := netip.MustParsePrefix("127.0.0.1/32")
	return newHarnessWeb(t, nil, func(d *web.Deps) { d.TrustedProxies = []netip.Prefix{loopback} })
}

// cookies are the cookies a response sets, by name; a name set twice is an error.
func cookies(t *testing.T, p page) map[string]*http.Cookie {
	t.Helper()
	out := map[string]*http.Cookie{}
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if out[c.Name] != nil {
			t.Errorf("cookie %s set twice: %v", c.Name, p.header.Values("Set-Cookie"))
		}
		out[c.Name] = c
	}
	return out
}

// Finding 8b of issue 17: failed sign-ins were counted per account, so anyone could
// lock an admin out by failing to sign in as them. Now they count per address and
// per address and account; behind a trusted proxy the address is the client the
// proxy names, and what the client itself puts in X-Forwarded-For buys no new bucket.
func TestLoginThrottlePerAddress(t *testing.T) {
	t.Parallel()
	h := behindProxy(t)
	h.user("admin@example.com", auth.Admin)
	attacker := h.browser()
	attacker.get("/login")
	wrong := url.Values{"email": {"admin@example.com"}, "password": {"guess guess"}}
	// Buckets refill as time passes (under -race an attempt's password hashing is
	// slow), so each limit is checked as: nothing refused within the burst, and
	// refusals soon after.
	if n := attemptsUntilRefused(attacker, 30, func(int) (url.Values, string) { return wrong, "203.0.113.9" }); n < 10 || n == 30 {
		t.Fatalf("wrong passwords from one address at one account: refused after %d, want after 10 (and soon)", n)
	}
	// Claims to the left of what the proxy appended are the client's own.
	if p := attacker.post("/login", wrong, "X-Forwarded-For", "198.51.100.7, 203.0.113.9"); p.status != http.StatusTooManyRequests {
		t.Errorf("same client claiming another address: status %d, want 429", p.status)
	}
	admin := h.browser()
	admin.get("/login")
	p := admin.post("/login", url.Values{"email": {"admin@example.com"}, "password": {password}}, "X-Forwarded-For", "198.51.100.7")
	if p.status != http.StatusSeeOther {
		t.Errorf("the admin from another address: status %d, want 303 (signed in)", p.status)
	}

	// One address trying many accounts is stopped after 30 attempts a minute.
	sprayer := h.browser()
	sprayer.get("/login")
	n := attemptsUntilRefused(sprayer, 60, func(i int) (url.Values, string) {
		return url.Values{"email": {"user" + strconv.Itoa(i) + "@example.com"}, "password": {"guess guess"}}, "192.0.2.44"
	})
	if n < 30 || n == 60 {
		t.Errorf("attempts at fresh accounts from one address: refused after %d, want after 30 (and soon)", n)
	}
}

// attemptsUntilRefused signs in with attempt(i)'s form, forwarded for its address,
// until lift answers 429, at most max times, and returns how many attempts were
// answered 401 before the first 429 (max if none was refused).
func attemptsUntilRefused(b *browser, max int, attempt func(i int) (url.Values, string)) int {
	b.h.t.Helper()
	for i := range max {
		form, addr := attempt(i)
		switch p := b.post("/login", form, "X-Forwarded-For", addr); p.status {
		case http.StatusTooManyRequests:
			return i
		case http.StatusUnauthorized:
		default:
			b.h.t.Fatalf("attempt %d: status %d, want 401 or 429", i+1, p.status)
		}
	}
	return max
}

// Without trusted proxies X-Forwarded-For is not read: a client cannot pick a fresh
// bucket per attempt.
func TestLoginThrottleIgnoresForwardedFor(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	b.get("/login")
	n := attemptsUntilRefused(b, 30, func(i int) (url.Values, string) {
		return url.Values{"email": {"ann@example.com"}, "password": {"guess guess"}}, "198.51.100." + strconv.Itoa(i+1)
	})
	if n < 10 || n == 30 {
		t.Errorf("attempts with a new X-Forwarded-For each: refused after %d, want after 10 (and soon)", n)
	}
}

// Finding 8c of issue 17: the session cookie is Secure when the request came over
// TLS, or through a trusted proxy that says so in X-Forwarded-Proto; the header from
// anyone else is ignored.
func TestSessionCookieSecure(t *testing.T) {
	t.Parallel()
	direct, proxied := newHarness(t), behindProxy(t)
	for _, h := range []*harness{direct, proxied} {
		h.user("ann@example.com", auth.Admin)
	}
	login := func(h *harness, headers ...string) *http.Cookie {
		t.Helper()
		b := h.browser()
		b.get("/login")
		p := b.post("/login", url.Values{"email": {"ann@example.com"}, "password": {password}}, headers...)
		if p.status != http.StatusSeeOther {
			t.Fatalf("login: status %d", p.status)
		}
		return cookies(t, p)["lift_session"]
	}
	for _, tc := range []struct {
		name       string
		h          *harness
		headers    []string
		wantSecure bool
	}{
		{"plain HTTP", direct, nil, false},
		{"X-Forwarded-Proto from a client", direct, []string{"X-Forwarded-Proto", "https"}, false},
		{"X-Forwarded-Proto from a trusted proxy", proxied, []string{"X-Forwarded-Proto", "https"}, true},
		{"plain HTTP through a trusted proxy", proxied, []string{"X-Forwarded-Proto", "http"}, false},
	} {
		if ck := login(tc.h, tc.headers...); ck == nil || ck.Secure != tc.wantSecure {
			t.Errorf("%s: session cookie %v, want Secure %v", tc.name, ck, tc.wantSecure)
		}
	}
	// Over TLS (httptest marks an https:// request as such). Sec-Fetch-Site stands in
	// for the CSRF token, as in current browsers.
	req := httptest.NewRequest(http.MethodPost, "https://lift.example/login",
		strings.NewReader(url.Values{"email": {"ann@example.com"}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	rec := httptest.NewRecorder()
	direct.handler.ServeHTTP(rec, req)
	if ck := cookies(t, page{header: rec.Header()})["lift_session"]; rec.Code != http.StatusSeeOther || ck == nil || !ck.Secure {
		t.Errorf("over TLS: status %d, session cookie %v, want Secure", rec.Code, ck)
	}
}

// Finding 8e of issue 17: the CSRF token a browser held before signing in (which
// someone may have planted or read) stops working at sign-in, and the signed-in
// token stops working at sign-out.
func TestCSRFRotatedAtLoginAndLogout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.user("ed@example.com", auth.Editor)
	b := h.browser()
	b.get("/login")
	before := b.csrf
	p := b.post("/login", url.Values{"email": {"ed@example.com"}, "password": {password}})
	ck := cookies(t, p)["lift_csrf"]
	if p.status != http.StatusSeeOther || ck == nil || ck.Value == "" || ck.Value == before || !ck.HttpOnly {
		t.Fatalf("login: status %d, lift_csrf %v; want a new HttpOnly token (was %q)", p.status, ck, before)
	}
	if p := b.post("/experiments", url.Values{"csrf": {before}, "key": {"x"}}); p.status != http.StatusForbidden {
		t.Errorf("form with the token from before sign-in: status %d, want 403", p.status)
	}
	b.get("/experiments")
	if b.csrf != ck.Value {
		t.Fatalf("forms after sign-in carry %q, want the new token %q", b.csrf, ck.Value)
	}
	signedIn := b.csrf
	p = b.post("/logout", url.Values{})
	if out := cookies(t, p)["lift_csrf"]; p.status != http.StatusSeeOther || out == nil || out.Value == signedIn {
		t.Fatalf("logout: status %d, lift_csrf %v; want a new token", p.status, out)
	}
	if p := b.post("/login", url.Values{"csrf": {signedIn}, "email": {"ed@example.com"}, "password": {password}}); p.status != http.StatusForbidden {
		t.Errorf("form with the signed-in token after sign-out: status %d, want 403", p.status)
	}
}
