// Package session signs dashboard users in and out: server-side sessions in a cookie,
// CSRF protection for cookie-authenticated requests and login throttling.
package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/web/auth"
)

// CookieName is the session cookie.
const CookieName = "lift_session"

// CSRFField is the form field (and X-CSRF-Token the header) that carries the CSRF token.
const CSRFField = "csrf"

const (
	userContext = "lift.session.user"
	csrfContext = "lift.csrf"
	// DefaultTTL bounds how long a stolen cookie stays useful; a working day.
	DefaultTTL = 12 * time.Hour
)

// ErrBadCredentials means the e-mail or password is wrong; which one is not said.
var ErrBadCredentials = errors.New("wrong e-mail or password")

// ErrThrottled means too many login attempts came from this address, or from this
// address for this account, recently.
var ErrThrottled = errors.New("too many login attempts; wait a minute and try again")

// Users finds accounts by e-mail.
type Users interface {
	UserByEmail(ctx context.Context, email string) (auth.User, error)
}

// Manager creates, finds and ends sessions.
type Manager struct {
	store     auth.SessionStore
	users     Users
	ttl       time.Duration
	byAddress *Throttle // attempts from one client address, any account
	byAccount *Throttle // attempts from one client address at one account
	now       func() time.Time
}

// Login attempts allowed per minute: from one address at one account, and from one
// address in all (several people behind one office NAT may sign in at once).
const (
	accountAttempts = 10
	addressAttempts = 30
)

// New returns a Manager; sessions last ttl (DefaultTTL if zero).
func New(store auth.SessionStore, users Users, ttl time.Duration) *Manager {
	if ttl == 0 {
		ttl = DefaultTTL
	}
	return &Manager{store: store, users: users, ttl: ttl, now: time.Now,
		byAddress: NewThrottle(addressAttempts, time.Minute), byAccount: NewThrottle(accountAttempts, time.Minute)}
}

// Login checks the credentials and starts a session, setting its cookie, and replaces
// the CSRF token. It returns ErrThrottled, ErrBadCredentials or a store error.
//
// The client address is c.RealIP(): the peer's, or what a trusted proxy forwarded
// (web.New sets which proxies Echo trusts).
func (m *Manager) Login(c echo.Context, email, password string) (auth.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	// Attempts are limited per address, which stops one client trying many accounts,
	// and per account and address, which stops it guessing one password quickly.
	// Never per account alone: anyone could then lock an admin out by failing to
	// sign in as them.
	addr := c.RealIP()
	if !m.byAddress.Allow(addr) || !m.byAccount.Allow(addr+" "+email) {
		return auth.User{}, ErrThrottled
	}
	ctx := c.Request().Context()
	u, err := m.users.UserByEmail(ctx, email)
	if errors.Is(err, derrors.ErrNotFound) {
		// Hash anyway so a missing account takes as long as a wrong password and
		// response times do not reveal which e-mails exist.
		auth.VerifyPassword(dummyHash, password)
		return auth.User{}, ErrBadCredentials
	}
	if err != nil {
		return auth.User{}, err
	}
	if !auth.VerifyPassword(u.PasswordHash, password) {
		return auth.User{}, ErrBadCredentials
	}
	token := make([]byte, 32)
	_, _ = rand.Read(token)
	secret := base64.RawURLEncoding.EncodeToString(token)
	expires := m.now().Add(m.ttl)
	if err := m.store.CreateSession(ctx, auth.HashKey(secret), u.ID, expires); err != nil {
		return auth.User{}, err
	}
	c.SetCookie(m.cookie(c, secret, expires))
	rotateCSRF(c)
	return u, nil
}

var dummyHash = auth.HashPassword("lift timing equaliser")

func (m *Manager) cookie(c echo.Context, value string, expires time.Time) *http.Cookie {
	return &http.Cookie{
		Name:     CookieName,
		Value:    value,
		Path:     "/",
		Expires:  expires,
		HttpOnly: true,
		// Secure only when the request came over TLS, directly or through a trusted
		// proxy that says so (X-Forwarded-Proto): `make run` serves plain HTTP on
		// localhost. web.New makes c.Scheme ignore the header from anyone else.
		Secure:   c.Scheme() == "https",
		SameSite: http.SameSiteLaxMode,
	}
}

// Logout ends the request's session, clears its cookie and replaces the CSRF token.
func (m *Manager) Logout(c echo.Context) error {
	if ck, err := c.Cookie(CookieName); err == nil && ck.Value != "" {
		if err := m.store.DeleteSession(c.Request().Context(), auth.HashKey(ck.Value)); err != nil {
			return err
		}
	}
	ck := m.cookie(c, "", time.Unix(0, 0))
	ck.MaxAge = -1
	c.SetCookie(ck)
	rotateCSRF(c)
	return nil
}

// User returns the signed-in user of the request, looking the session up once per
// request.
func (m *Manager) User(c echo.Context) (auth.User, bool, error) {
	if u, ok := c.Get(userContext).(auth.User); ok {
		return u, true, nil
	}
	ck, err := c.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return auth.User{}, false, nil
	}
	u, err := m.store.SessionUser(c.Request().Context(), auth.HashKey(ck.Value))
	if errors.Is(err, derrors.ErrNotFound) {
		return auth.User{}, false, nil
	}
	if err != nil {
		return auth.User{}, false, fmt.Errorf("session: %w", err)
	}
	c.Set(userContext, u)
	return u, true, nil
}

// HasCookie reports whether the request presents a session cookie at all.
func HasCookie(r *http.Request) bool {
	ck, err := r.Cookie(CookieName)
	return err == nil && ck.Value != ""
}

// CSRF protects unsafe requests with a double-submitted token (Echo's middleware):
// the token lives in an HttpOnly cookie and every form or script must send it back in
// the csrf field or the X-CSRF-Token header. onError renders the refusal.
func CSRF(onError middleware.CSRFErrorHandler) echo.MiddlewareFunc {
	return middleware.CSRFWithConfig(middleware.CSRFConfig{
		TokenLookup:    "form:" + CSRFField + ",header:" + echo.HeaderXCSRFToken,
		ContextKey:     csrfContext,
		CookieName:     csrfCookie,
		CookiePath:     "/",
		CookieMaxAge:   int(csrfTTL / time.Second),
		CookieHTTPOnly: true,
		CookieSameSite: http.SameSiteLaxMode,
		ErrorHandler:   onError,
	})
}

const (
	csrfCookie = "lift_csrf"
	csrfTTL    = 24 * time.Hour
)

// rotateCSRF gives the browser a new CSRF token in place of the one the middleware
// read or issued for this request, so a token someone learned or planted before a
// sign-in (or left behind at a sign-out) is worth nothing after it. The forms of this
// response get the new token.
func rotateCSRF(c echo.Context) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	// One Set-Cookie per name: drop the one the middleware added for the old token.
	h := c.Response().Header()
	var kept []string
	for _, v := range h.Values("Set-Cookie") {
		if !strings.HasPrefix(v, csrfCookie+"=") {
			kept = append(kept, v)
		}
	}
	h.Del("Set-Cookie")
	for _, v := range kept {
		h.Add("Set-Cookie", v)
	}
	c.SetCookie(&http.Cookie{Name: csrfCookie, Value: token, Path: "/", Expires: time.Now().Add(csrfTTL),
		HttpOnly: true, SameSite: http.SameSiteLaxMode})
	c.Set(csrfContext, token)
}

// CSRFToken is the token to embed in the forms of the current response.
func CSRFToken(c echo.Context) string {
	s, _ := c.Get(csrfContext).(string)
	return s
}
