package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/web/session"
)

// loginForm is the login page's view-model.
type loginForm struct {
	Email string
	Next  string
	Error string
}

// safeNext keeps the post-login redirect on this site: next must be a path of this
// origin ("/flags?status=draft"), anything else sends the user to the experiments.
// Browsers are lenient where a parser is strict: they drop tabs and newlines anywhere
// in a URL, trim leading spaces and control characters, and read a backslash as a
// slash, so "/\t/evil.example" and "/\\evil.example" both mean //evil.example to
// them. Such characters are refused outright, before the parsed URL is checked for a
// scheme or host and for a path of the form //host.
func safeNext(next string) string {
	const home = "/experiments"
	if !strings.HasPrefix(next, "/") || strings.ContainsFunc(next, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '\\'
	}) {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		strings.HasPrefix(u.Path, "//") || strings.HasPrefix(u.EscapedPath(), "//") {
		return home
	}
	return next
}

func (d *Dashboard) loginPage(c echo.Context) error {
	if _, ok, err := d.Sessions.User(c); err == nil && ok {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
	}
	return render(c, http.StatusOK, loginView(d.page(c, "", "Sign in"), loginForm{Next: c.QueryParam("next")}))
}

func (d *Dashboard) login(c echo.Context) error {
	f := loginForm{Email: c.FormValue("email"), Next: c.FormValue("next")}
	_, err := d.Sessions.Login(c, f.Email, c.FormValue("password"))
	switch {
	case errors.Is(err, session.ErrBadCredentials):
		f.Error = "Wrong e-mail or password."
		return render(c, http.StatusUnauthorized, loginView(d.page(c, "", "Sign in"), f))
	case errors.Is(err, session.ErrThrottled):
		f.Error = "Too many attempts. Wait a minute, then try again."
		c.Response().Header().Set("Retry-After", "60")
		return render(c, http.StatusTooManyRequests, loginView(d.page(c, "", "Sign in"), f))
	case err != nil:
		return err
	}
	return c.Redirect(http.StatusSeeOther, safeNext(f.Next))
}

func (d *Dashboard) logout(c echo.Context) error {
	if err := d.Sessions.Logout(c); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}
