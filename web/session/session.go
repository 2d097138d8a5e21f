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

// ErrThrottled means too many login attempts came from this address or for this
// account recently.
var ErrThrottled = errors.New("too many login attempts; wait a minute and try again")

// Users finds accounts by e-mail.
type Users interface {
	UserByEmail(ctx context.Context, email string) (auth.User, error)
}

// Manager creates, finds and ends sessions.
type Manager struct {
	store    auth.SessionStore
	users    Users
	ttl      time.Duration
	throttle *Throttle
	now      func() time.Time
}

// New returns a Manager; sessions last ttl (DefaultTTL if zero).
func New(store auth.SessionStore, users Users, ttl time.Duration) *Manager {
	if ttl == 0 {
		ttl = DefaultTTL
	}
	return &Manager{store: store, users: users, ttl: ttl, throttle: NewThrottle(10, time.Minute), now: time.Now}
}

// Login checks the credentials and starts a session, setting its cookie. It returns
// ErrThrottled, ErrBadCredentials or a store error.
func (m *Manager) Login(c echo.Context, email, password string) (auth.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	// Both the address and the account are limited: one stops a single client trying
	// many accounts, the other many clients trying one account. The address is the
	// peer's own: X-Forwarded-For is whatever the client says, so it would let anyone
	// pick a fresh bucket per attempt.
	if !m.throttle.Allow("ip:"+echo.ExtractIPDirect()(c.Request())) || !m.throttle.Allow("email:"+email) {
		return auth.User{}, ErrThrottled
	}
	ctx := c.Request().Context()
	u, err := m.users.UserByEmail(ctx, email)
	if errors.Is(err, auth.ErrNotFound) {
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
		// Secure only when the request came over TLS (directly or through a proxy
		// that says so): `make run` serves plain HTTP on localhost.
		Secure:   c.Scheme() == "https",
		SameSite: http.SameSiteLaxMode,
	}
}

// Logout ends the request's session and clears its cookie.
func (m *Manager) Logout(c echo.Context) error {
	if ck, err := c.Cookie(CookieName); err == nil && ck.Value != "" {
		if err := m.store.DeleteSession(c.Request().Context(), auth.HashKey(ck.Value)); err != nil {
			return err
		}
	}
	ck := m.cookie(c, "", time.Unix(0, 0))
	ck.MaxAge = -1
	c.SetCookie(ck)
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
	if errors.Is(err, auth.ErrNotFound) {
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
		CookieName:     "lift_csrf",
		CookiePath:     "/",
		CookieHTTPOnly: true,
		CookieSameSite: http.SameSiteLaxMode,
		ErrorHandler:   onError,
	})
}

// CSRFToken is the token to embed in the forms of the current response.
func CSRFToken(c echo.Context) string {
	s, _ := c.Get(csrfContext).(string)
	return s
}
