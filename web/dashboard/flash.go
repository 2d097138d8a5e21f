package dashboard

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// flashCookie carries a one-time message across the redirect after a form is saved
// ("Flag saved."), shown by the next page and then dropped.
const flashCookie = "lift_flash"

// flash is a message for the next page: Tone is success or warn; Link, when set, is
// an action the message suggests (LinkText names it).
type flash struct {
	Tone, Text, Link, LinkText string
}

// setFlash stores f for the next page the browser loads.
func setFlash(c echo.Context, f flash) {
	v := url.Values{"tone": {f.Tone}, "text": {f.Text}}
	if f.Link != "" {
		v.Set("link", f.Link)
		v.Set("link_text", f.LinkText)
	}
	c.SetCookie(&http.Cookie{Name: flashCookie, Value: v.Encode(), Path: "/", MaxAge: 60,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: c.IsTLS()})
}

// takeFlash returns the stored message, if any, and clears it.
func takeFlash(c echo.Context) *flash {
	ck, err := c.Cookie(flashCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	c.SetCookie(&http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	v, err := url.ParseQuery(ck.Value)
	if err != nil || v.Get("text") == "" {
		return nil
	}
	f := &flash{Tone: v.Get("tone"), Text: v.Get("text"), LinkText: v.Get("link_text")}
	if f.Tone != "warn" {
		f.Tone = "success"
	}
	// Only a path of this site: the cookie is the browser's to change.
	if l := v.Get("link"); strings.HasPrefix(l, "/") && !strings.HasPrefix(l, "//") {
		f.Link = l
	}
	return f
}
