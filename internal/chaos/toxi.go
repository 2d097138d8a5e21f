package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Proxy is a toxiproxy proxy run in this process (the toxiproxy server's own types,
// without its HTTP API): lift connects to Addr instead of the service, and the
// scenario adds and removes toxics.
type Proxy struct {
	t testing.TB
	p *toxiproxy.Proxy
}

// NewProxy listens on a free loopback port and forwards to upstream until the test ends.
func NewProxy(t testing.TB, name, upstream string) *Proxy {
	t.Helper()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(server, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("chaos: toxiproxy %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return &Proxy{t: t, p: p}
}

// Addr is where clients connect.
func (p *Proxy) Addr() string { return p.p.Listen }

// Toxic adds a toxic, e.g. Toxic("latency", "downstream", `{"latency":2000}`), and
// returns its name for Remove.
func (p *Proxy) Toxic(kind, stream, attributes string) string {
	p.t.Helper()
	name := kind + "_" + stream
	body := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, kind, stream, attributes)
	if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
		p.t.Fatalf("chaos: add toxic %s: %v", name, err)
	}
	return name
}

// Remove removes a toxic.
func (p *Proxy) Remove(name string) {
	p.t.Helper()
	if err := p.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		p.t.Fatalf("chaos: remove toxic %s: %v", name, err)
	}
}
