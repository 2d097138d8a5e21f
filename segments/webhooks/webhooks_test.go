package webhooks_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/segments/webhooks"
)

func TestSignatureVerifies(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	body := []byte(`{"webhook":"crm","changes":[]}`)
	now := time.Unix(1_700_000_000, 0)
	header := webhooks.Sign(secret, now, body)
	if header != "t=1700000000,v1="+header[len("t=1700000000,v1="):] || len(header) != len("t=1700000000,v1=")+64 {
		t.Fatalf("header %q, want t=<unix>,v1=<64 hex digits>", header)
	}
	if err := webhooks.Verify(secret, header, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("a genuine signature: %v", err)
	}
	for name, c := range map[string]struct {
		secret, header string
		body           []byte
		now            time.Time
	}{
		"other secret":    {"another-secret-of-16", header, body, now},
		"tampered body":   {secret, header, []byte(`{"webhook":"crm","changes":[{}]}`), now},
		"stale":           {secret, header, body, now.Add(6 * time.Minute)},
		"from the future": {secret, header, body, now.Add(-6 * time.Minute)},
		"malformed":       {secret, "sha256=abc", body, now},
		"no signature":    {secret, "t=1700000000", body, now},
	} {
		t.Run(name, func(t *testing.T) {
			err := webhooks.Verify(c.secret, c.header, c.body, c.now, 5*time.Minute)
			if !errors.Is(err, webhooks.ErrBadSignature) {
				t.Fatalf("Verify = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	lan := &webhooks.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("169.254.0.0/16")}}
	for name, c := range map[string]struct {
		w      webhooks.Webhook
		fields []string
		guard  *webhooks.Guard
	}{
		"ok":          {w: webhooks.Webhook{Key: "crm", URL: "https://crm.example/hook"}},
		"bad key":     {w: webhooks.Webhook{Key: "CRM!", URL: "https://crm.example/hook"}, fields: []string{"key"}},
		"relative":    {w: webhooks.Webhook{Key: "crm", URL: "/hook"}, fields: []string{"url"}},
		"ftp":         {w: webhooks.Webhook{Key: "crm", URL: "ftp://crm.example/hook"}, fields: []string{"url"}},
		"short":       {w: webhooks.Webhook{Key: "crm", URL: "http://x", Secret: "short"}, fields: []string{"secret"}},
		"bad segment": {w: webhooks.Webhook{Key: "crm", URL: "http://x", Segments: []string{"ok", "Not OK"}}, fields: []string{"segments[1]"}},
		// Where a webhook may point (finding 7 of issue 17): names are checked when a
		// delivery connects, literal addresses already here.
		"userinfo":          {w: webhooks.Webhook{Key: "crm", URL: "https://user:pw@crm.example/hook"}, fields: []string{"url"}},
		"no host":           {w: webhooks.Webhook{Key: "crm", URL: "http://:8080/hook"}, fields: []string{"url"}},
		"loopback":          {w: webhooks.Webhook{Key: "crm", URL: "http://127.0.0.1:8080/hook"}, fields: []string{"url"}},
		"loopback v6":       {w: webhooks.Webhook{Key: "crm", URL: "http://[::1]/hook"}, fields: []string{"url"}},
		"mapped loopback":   {w: webhooks.Webhook{Key: "crm", URL: "http://[::ffff:127.0.0.1]/hook"}, fields: []string{"url"}},
		"private":           {w: webhooks.Webhook{Key: "crm", URL: "http://10.1.2.3/hook"}, fields: []string{"url"}},
		"allowed private":   {w: webhooks.Webhook{Key: "crm", URL: "http://10.1.2.3/hook"}, guard: lan},
		"metadata":          {w: webhooks.Webhook{Key: "crm", URL: "http://169.254.169.254/latest/meta-data/"}, fields: []string{"url"}, guard: lan},
		"legacy dotted":     {w: webhooks.Webhook{Key: "crm", URL: "http://127.1/hook"}, fields: []string{"url"}},
		"legacy integer":    {w: webhooks.Webhook{Key: "crm", URL: "http://2130706433/hook"}, fields: []string{"url"}},
		"legacy hex":        {w: webhooks.Webhook{Key: "crm", URL: "http://0x7f.0.0.1/hook"}, fields: []string{"url"}},
		"name (dial time)":  {w: webhooks.Webhook{Key: "crm", URL: "http://localhost:8080/hook"}},
		"public address":    {w: webhooks.Webhook{Key: "crm", URL: "https://93.184.215.14/hook"}},
		"public address v6": {w: webhooks.Webhook{Key: "crm", URL: "https://[2606:4700::6810:84e5]/hook"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.w.Validate(c.guard)
			var got []string
			if err != nil {
				var ve *derrors.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("Validate = %v, want a *ValidationError", err)
				}
				for _, f := range ve.Fields {
					got = append(got, f.Field)
				}
			}
			if len(got) != len(c.fields) || (len(got) > 0 && got[0] != c.fields[0]) {
				t.Fatalf("fields %v, want %v (%v)", got, c.fields, err)
			}
		})
	}
}

func TestBackoffGrowsToTheCeiling(t *testing.T) {
	b := webhooks.ExponentialBackoff(time.Second, time.Minute)
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 7: time.Minute, 100: time.Minute} {
		got := b(n)
		if got < want*8/10 || got > want*12/10 {
			t.Errorf("retry %d after %v, want %v ± 20%%", n, got, want)
		}
	}
}
