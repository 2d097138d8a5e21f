package webhooks

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// An editor chooses where lift sends webhooks, and lift usually runs next to things
// no editor should reach: its own admin listener, Postgres, a cloud metadata service
// handing out credentials. So deliveries go only to public addresses unless the
// operator allows a network (LIFT_WEBHOOK_ALLOW_NETS), and the address is checked
// on the connection itself, after DNS: a name that resolves to 127.0.0.1, or changes
// its answer between a check and the dial (DNS rebinding), is refused all the same.

// ErrAddressNotAllowed is wrapped by the errors of connections a Guard refuses.
var ErrAddressNotAllowed = errors.New("webhooks: address not allowed")

type addressClass struct {
	prefix netip.Prefix
	class  string
}

func classes(class string, prefixes ...string) []addressClass {
	out := make([]addressClass, len(prefixes))
	for i, p := range prefixes {
		out[i] = addressClass{netip.MustParsePrefix(p), class}
	}
	return out
}

// nonPublic lists, by what they are, the address ranges a delivery may not reach
// by default: those of the IANA special-purpose registries that are not public
// unicast.
var nonPublic = concat(
	classes("unspecified", "0.0.0.0/8", "::/128"),
	classes("loopback", "127.0.0.0/8", "::1/128"),
	classes("private", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
	classes("shared (CGNAT)", "100.64.0.0/10"),
	classes("link-local", "169.254.0.0/16", "fe80::/10"),
	classes("multicast", "224.0.0.0/4", "ff00::/8"),
	// 240/4 holds the broadcast address 255.255.255.255.
	classes("reserved", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "240.0.0.0/4", "::/96", "100::/64", "2001:db8::/32", "fec0::/10"),
	// Local-use NAT64 (RFC 8215) translates into whatever the site chose.
	classes("NAT64 (local use)", "64:ff9b:1::/48"),
)

// metadata are cloud metadata services, which hand out credentials: never reachable,
// whatever the allow-list says (most lie in ranges refused anyway; 168.63.129.16 is
// Azure's, in public space).
var metadata = classes("cloud metadata",
	"169.254.169.254/32", // AWS, GCP, Azure, DigitalOcean, Oracle, OpenStack
	"169.254.170.2/32",   // AWS ECS task credentials
	"169.254.0.23/32",    // Tencent Cloud
	"100.100.100.200/32", // Alibaba Cloud
	"192.0.0.192/32",     // Oracle Cloud (classic)
	"168.63.129.16/32",   // Azure wire server
	"fd00:ec2::254/128",  // AWS, IPv6
)

var alwaysRefused = map[string]bool{"cloud metadata": true, "unspecified": true, "invalid": true}

func concat(lists ...[]addressClass) []addressClass {
	var out []addressClass
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// Classify says what kind of non-public address addr is ("loopback", "private",
// "cloud metadata", …), or "" for a public one. An IPv6 address that carries an IPv4
// one (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:aabb:ccdd::) is
// classified by the IPv4 address it reaches.
func Classify(addr netip.Addr) string {
	if !addr.IsValid() {
		return "invalid"
	}
	addr = embedded(addr.WithZone(""))
	for _, list := range [][]addressClass{metadata, nonPublic} {
		for _, c := range list {
			if c.prefix.Contains(addr) {
				return c.class
			}
		}
	}
	return ""
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// embedded returns the IPv4 address an IPv6 address forwards to, or addr itself.
func embedded(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	b := addr.As16()
	switch {
	case nat64.Contains(addr):
		return netip.AddrFrom4([4]byte(b[12:16]))
	case sixToFour.Contains(addr):
		return netip.AddrFrom4([4]byte(b[2:6]))
	}
	return addr
}

// Guard decides which addresses deliveries may reach: public ones, and those in
// Allow. Cloud metadata and unspecified addresses (0.0.0.0 and :: reach the local
// host) are refused even when Allow covers them. A nil *Guard allows public
// addresses only.
type Guard struct {
	// Allow lists the networks operators trust besides the public internet, such as
	// a CRM on a private network (LIFT_WEBHOOK_ALLOW_NETS). Write IPv4 networks in
	// IPv4 form: addresses are compared after unmapping.
	Allow []netip.Prefix
}

// Check returns nil if a delivery may connect to addr, or an error wrapping
// ErrAddressNotAllowed that names the kind of address.
func (g *Guard) Check(addr netip.Addr) error {
	class := Classify(addr)
	if class == "" {
		return nil
	}
	if g != nil && !alwaysRefused[class] {
		plain := embedded(addr.WithZone(""))
		for _, p := range g.Allow {
			if p.Contains(plain) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %s (%s)", ErrAddressNotAllowed, addr, class)
}

// control runs on every connection after DNS and before connect: address is the IP
// and port about to be dialled.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparseable address %q", ErrAddressNotAllowed, address)
	}
	return g.Check(ap.Addr())
}

// Client returns the HTTP client deliveries use: every connection it opens is
// checked by g on the address actually dialled; it never uses a proxy (a proxy
// would dial the receiver itself, out of the check's sight, so HTTP_PROXY and
// HTTPS_PROXY are ignored on purpose); and it never follows a redirect (a 3xx is
// answered as it is, and the dispatcher counts it as a failure). timeout bounds
// each request.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: g.control}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
