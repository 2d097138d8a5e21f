package webhooks_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftlab/lift/segments/webhooks"
)

func TestClassify(t *testing.T) {
	for addr, want := range map[string]string{
		// unspecified: 0.0.0.0 and :: reach the local host
		"0.0.0.0": "unspecified", "0.1.2.3": "unspecified", "::": "unspecified",
		"127.0.0.1": "loopback", "127.255.255.254": "loopback", "::1": "loopback",
		"10.0.0.1": "private", "172.16.0.1": "private", "172.31.255.255": "private", "192.168.1.1": "private",
		"fc00::1": "private", "fd12:3456::1": "private",
		"100.64.0.1": "shared (CGNAT)", "100.127.255.255": "shared (CGNAT)",
		"169.254.1.1": "link-local", "fe80::1": "link-local", "fe80::1%eth0": "link-local",
		"169.254.169.254": "cloud metadata", "169.254.170.2": "cloud metadata", "fd00:ec2::254": "cloud metadata",
		"100.100.100.200": "cloud metadata", "168.63.129.16": "cloud metadata", "192.0.0.192": "cloud metadata",
		"224.0.0.1": "multicast", "239.255.255.250": "multicast", "ff02::1": "multicast",
		"255.255.255.255": "reserved", "240.0.0.1": "reserved", "192.0.2.1": "reserved", "198.18.0.1": "reserved",
		"2001:db8::1": "reserved", "::7f00:1": "reserved", // IPv4-compatible, deprecated
		// IPv6 forms of IPv4 addresses count as the IPv4 address.
		"::ffff:127.0.0.1": "loopback", "::ffff:10.0.0.1": "private", "::ffff:169.254.169.254": "cloud metadata",
		"::ffff:0.0.0.0": "unspecified", "::ffff:100.64.0.1": "shared (CGNAT)",
		"64:ff9b::7f00:1": "loopback", "64:ff9b::a00:1": "private", "64:ff9b::a9fe:a9fe": "cloud metadata",
		"64:ff9b:1::1":  "NAT64 (local use)",
		"2002:7f00:1::": "loopback", "2002:c0a8:101::1": "private",
		// public
		"8.8.8.8": "", "1.1.1.1": "", "93.184.215.14": "", "11.0.0.1": "", "172.15.255.255": "", "172.32.0.1": "",
		"100.63.255.255": "", "100.128.0.1": "", "192.169.0.1": "", "169.253.255.255": "",
		"2606:4700::6810:84e5": "", "2001:4860:4860::8888": "", "::ffff:8.8.8.8": "", "64:ff9b::808:808": "",
	} {
		if got := webhooks.Classify(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Classify(%s) = %q, want %q", addr, got, want)
		}
	}
	if got := webhooks.Classify(netip.Addr{}); got != "invalid" {
		t.Errorf("Classify(zero Addr) = %q", got)
	}
}

func TestGuardAllowList(t *testing.T) {
	var allow []netip.Prefix
	for _, p := range []string{"10.1.0.0/16", "192.168.5.7/32", "127.0.0.1/32", "169.254.0.0/16", "0.0.0.0/0", "fd00::/8"} {
		allow = append(allow, netip.MustParsePrefix(p))
	}
	g := &webhooks.Guard{Allow: allow}
	for addr, allowed := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.1.2.3": true, "192.168.5.7": true, "127.0.0.1": true, "169.254.1.1": true,
		"fd12::1": true, "8.8.8.8": true, "10.2.0.1": true, // 0.0.0.0/0 covers every IPv4 address…
		"192.168.5.8": true,
		// …but metadata and unspecified addresses never.
		"169.254.169.254": false, "100.100.100.200": false, "fd00:ec2::254": false, "0.0.0.0": false,
		// Not covered.
		"::1": false, "fe80::1": false, "fc00::1": false,
	} {
		err := g.Check(netip.MustParseAddr(addr))
		if (err == nil) != allowed || err != nil && !errors.Is(err, webhooks.ErrAddressNotAllowed) {
			t.Errorf("Check(%s) = %v, want allowed %v", addr, err, allowed)
		}
	}
	narrow := &webhooks.Guard{Allow: allow[:3]}
	for addr, allowed := range map[string]bool{"10.1.2.3": true, "10.2.0.1": false, "192.168.5.8": false,
		"127.0.0.2": false, "8.8.8.8": true} {
		if err := narrow.Check(netip.MustParseAddr(addr)); (err == nil) != allowed {
			t.Errorf("narrow Check(%s) = %v, want allowed %v", addr, err, allowed)
		}
	}
	var none *webhooks.Guard
	if none.Check(netip.MustParseAddr("8.8.8.8")) != nil || none.Check(netip.MustParseAddr("10.1.2.3")) == nil {
		t.Error("a nil Guard must allow public addresses only")
	}
}

// counter is a receiver counting the requests it gets.
type counter struct{ n atomic.Int64 }

func (c *counter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	c.n.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

func newCounter(t *testing.T) (*counter, *httptest.Server) {
	c := &counter{}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv
}

var loopback = &webhooks.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}

// The client refuses a receiver on 127.0.0.1 (an httptest server) by default, whether
// named by its address or by a name resolving to it, on the connection itself; the
// allow-list lets it through.
func TestClientRefusesLoopback(t *testing.T) {
	recv, srv := newCounter(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/hook"} {
		resp, err := (*webhooks.Guard)(nil).Client(5*time.Second).Post(u, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, webhooks.ErrAddressNotAllowed) || webhooks.Reason(err) != webhooks.ReasonNotAllowed {
			t.Errorf("POST %s by default: %v (reason %q), want the address refused", u, err, webhooks.Reason(err))
		}
	}
	if n := recv.n.Load(); n != 0 {
		t.Fatalf("the receiver on 127.0.0.1 got %d requests", n)
	}
	resp, err := loopback.Client(5*time.Second).Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("POST with 127.0.0.1/32 allowed: %v", err)
	}
	resp.Body.Close()
	if n := recv.n.Load(); n != 1 {
		t.Fatalf("the receiver got %d requests with 127.0.0.1/32 allowed, want 1", n)
	}
}

// A redirect is answered as it is, not followed.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	target, targetSrv := newCounter(t)
	redirector := httptest.NewServer(http.RedirectHandler(targetSrv.URL+"/internal", http.StatusTemporaryRedirect))
	t.Cleanup(redirector.Close)
	resp, err := loopback.Client(5*time.Second).Post(redirector.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || target.n.Load() != 0 {
		t.Fatalf("status %d, %d requests at the redirect's target; want 307 and none", resp.StatusCode, target.n.Load())
	}
}

// A proxy would dial the receiver itself, beyond the check, so the client uses none
// whatever HTTP_PROXY says (net/http reads the environment once per process, so this
// checks the transport rather than setting the variable).
func TestClientUsesNoProxy(t *testing.T) {
	tr, ok := (*webhooks.Guard)(nil).Client(time.Second).Transport.(*http.Transport)
	if !ok || tr.Proxy != nil {
		t.Fatalf("transport %T with a Proxy function; want an *http.Transport without", tr)
	}
}

func TestReasons(t *testing.T) {
	for name, c := range map[string]struct {
		err  error
		want string
	}{
		"refused address": {&url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Net: "tcp",
			Err: errors.Join(webhooks.ErrAddressNotAllowed, errors.New("127.0.0.1 (loopback)"))}}, webhooks.ReasonNotAllowed},
		"refused port": {&url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Net: "tcp",
			Err: errors.New("connect: connection refused")}}, webhooks.ReasonConnection},
		"timeout":     {&url.Error{Op: "Post", URL: "http://x", Err: context.DeadlineExceeded}, webhooks.ReasonTimeout},
		"dns":         {&url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}}}, webhooks.ReasonDNS},
		"interrupted": {&url.Error{Op: "Post", URL: "http://x", Err: context.Canceled}, webhooks.ReasonInterrupted},
		"other":       {errors.New("json: unsupported value"), webhooks.ReasonHidden},
	} {
		if got := webhooks.Reason(c.err); got != c.want {
			t.Errorf("%s: Reason = %q, want %q", name, got, c.want)
		}
	}
	for stored, want := range map[string][2]string{
		"HTTP 500":                        {"HTTP 500", webhooks.ReasonHidden},
		"HTTP 302: redirect not followed": {"HTTP 302: redirect not followed", webhooks.ReasonHidden},
		"address not allowed":             {"address not allowed", webhooks.ReasonHidden},
		"timeout":                         {"timeout", webhooks.ReasonHidden},
		// Written by an older lift: the raw error, the port scanner's answer.
		`Post "http://10.0.0.5:5432/": dial tcp 10.0.0.5:5432: connect: connection refused`: {webhooks.ReasonHidden, webhooks.ReasonHidden},
		"HTTP 500 from 10.0.0.5": {webhooks.ReasonHidden, webhooks.ReasonHidden},
	} {
		if got := webhooks.ShownReason(stored, true); got != want[0] {
			t.Errorf("ShownReason(%q) to an editor = %q, want %q", stored, got, want[0])
		}
		if got := webhooks.ShownReason(stored, false); got != want[1] {
			t.Errorf("ShownReason(%q) to a viewer = %q, want %q", stored, got, want[1])
		}
	}
}
