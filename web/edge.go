package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
)

// What lift believes about a request's origin, and what it tells browsers about
// framing its pages (docs/security.md).

// trustProxies sets what c.RealIP and c.Scheme believe. X-Forwarded-For and
// X-Forwarded-Proto are whatever the client says unless a proxy of ours set them, so
// they are read only when the peer is one of the trusted proxies: the client address
// is then the right-most address in X-Forwarded-For that is not a trusted proxy (the
// entries to its left are the client's own claims). Echo trusts loopback and private
// peers by default; lift trusts none but the configured ones, so with no proxies the
// address is the peer's and a request is HTTPS only over TLS.
func trustProxies(e *echo.Echo, proxies []netip.Prefix) {
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range proxies {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	e.IPExtractor = echo.ExtractIPFromXFFHeader(opts...)
	e.SchemeExtractor = echo.ExtractSchemeFromHeaders(opts...)
}

// noFraming forbids other sites to show lift's pages in a frame, where a page of
// theirs could trick a signed-in user into clicking lift's buttons (clickjacking):
// CSP frame-ancestors for current browsers, X-Frame-Options for older ones. It applies
// to every response, as nothing lift serves is meant to be framed; the browser SDK is
// a script, which these headers do not affect.
func noFraming(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		res := c.Response()
		res.Before(func() { forbidFraming(res.Header()) })
		return next(c)
	}
}

// forbidFraming adds frame-ancestors 'none' to the response's Content-Security-Policy
// (creating one if needed) and sets X-Frame-Options: DENY. A handler that chose its
// own frame-ancestors keeps its choice.
func forbidFraming(h http.Header) {
	const csp = "Content-Security-Policy"
	policy := strings.TrimSpace(h.Get(csp))
	for _, directive := range strings.Split(policy, ";") {
		if name, _, _ := strings.Cut(strings.TrimSpace(directive), " "); strings.EqualFold(name, "frame-ancestors") {
			return
		}
	}
	if policy = strings.TrimRight(policy, "; "); policy != "" {
		policy += "; "
	}
	h.Set(csp, policy+"frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
}
