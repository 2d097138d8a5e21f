package webhooks_test

import (
	"errors"
	"testing"
	"time"

	"github.com/liftlab/lift/experiments"
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
	for name, c := range map[string]struct {
		w      webhooks.Webhook
		fields []string
	}{
		"ok":          {webhooks.Webhook{Key: "crm", URL: "https://crm.example/hook"}, nil},
		"bad key":     {webhooks.Webhook{Key: "CRM!", URL: "https://crm.example/hook"}, []string{"key"}},
		"relative":    {webhooks.Webhook{Key: "crm", URL: "/hook"}, []string{"url"}},
		"ftp":         {webhooks.Webhook{Key: "crm", URL: "ftp://crm.example/hook"}, []string{"url"}},
		"short":       {webhooks.Webhook{Key: "crm", URL: "http://x", Secret: "short"}, []string{"secret"}},
		"bad segment": {webhooks.Webhook{Key: "crm", URL: "http://x", Segments: []string{"ok", "Not OK"}}, []string{"segments[1]"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.w.Validate()
			var got []string
			if err != nil {
				var ve *experiments.ValidationError
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
