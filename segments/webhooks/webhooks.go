// Package webhooks sends behavioural segment changes (every enter and exit) to the
// HTTP endpoints operators configure, so a marketing tool or CDP can react.
//
// Changes reach an outbox in the same transaction that records the membership
// (segments/pgstore), so none is lost across a restart and none waits for a receiver.
// A Dispatcher delivers the outbox in batches, signs each request with the webhook's
// secret (HMAC-SHA256, see Sign), retries failures with exponential backoff and
// dead-letters a change after MaxAttempts; dead letters stay visible in the API and
// can be redelivered. Delivery is at least once: receivers deduplicate by change id.
package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
)

// Webhook is one configured endpoint.
type Webhook struct {
	Key string `json:"key"`
	URL string `json:"url"`
	// Segments limits the changes sent to these segments; empty means every
	// published behavioural segment. Preview memberships are never sent.
	Segments []string `json:"segments"`
	Enabled  *bool    `json:"enabled,omitempty"`
	// Secret is the HMAC key of the signature. The API accepts it on create and
	// update, generates one when a new webhook has none, and shows it only in the
	// answer to the create that generated it.
	Secret string `json:"secret,omitempty"`
}

// IsEnabled reports whether changes are sent (the default).
func (w *Webhook) IsEnabled() bool { return w.Enabled == nil || *w.Enabled }

// MinSecretLength is the shortest secret accepted: shorter keys make the HMAC
// guessable.
const MinSecretLength = 16

// Validate checks the document; it returns a *derrors.ValidationError listing
// every problem by field. A URL whose host is an IP address g refuses is refused
// here already; host names are checked when a delivery connects.
func (w *Webhook) Validate(g *Guard) error {
	v := &derrors.ValidationError{}
	add := func(field, msg string) {
		v.Fields = append(v.Fields, derrors.FieldError{Field: field, Message: msg})
	}
	if fe := experiments.CheckKey("key", w.Key); fe != nil {
		v.Fields = append(v.Fields, *fe)
	}
	if msg := checkURL(w.URL, g); msg != "" {
		add("url", msg)
	}
	for i, s := range w.Segments {
		if fe := experiments.CheckKey(fmt.Sprintf("segments[%d]", i), s); fe != nil {
			v.Fields = append(v.Fields, *fe)
		}
	}
	if w.Secret != "" && len(w.Secret) < MinSecretLength {
		add("secret", fmt.Sprintf("must be at least %d characters", MinSecretLength))
	}
	if len(v.Fields) > 0 {
		return v
	}
	return nil
}

// checkURL returns what is wrong with a webhook URL, or "".
func checkURL(raw string, g *Guard) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "must be an absolute http:// or https:// URL"
	case u.User != nil:
		// Viewers can read webhook URLs; the secret signs deliveries instead.
		return "must not contain a user name or password (the signature authenticates deliveries)"
	case u.Hostname() == "":
		return "must name a host"
	}
	host := u.Hostname()
	addr, err := netip.ParseAddr(host)
	if err != nil {
		// No top-level domain is numeric: this is an IPv4 address in a legacy form
		// (127.1, 2130706433, 0x7f.0.0.1) that some resolvers accept.
		last := host[strings.LastIndex(host, ".")+1:]
		if _, err := strconv.ParseUint(last, 0, 64); err == nil {
			return fmt.Sprintf("has host %q: write an IPv4 address as four decimal numbers (a.b.c.d)", host)
		}
		return ""
	}
	if g.Check(addr) != nil {
		return fmt.Sprintf("may not point at %s (%s): webhooks reach public addresses, and private networks only if the operator allows them (LIFT_WEBHOOK_ALLOW_NETS)", addr, Classify(addr))
	}
	return ""
}

// NewSecret returns a random secret (32 bytes, hex).
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return "whsec_" + hex.EncodeToString(b)
}

// Change is one membership change as receivers get it. ID is the same for the same
// change however often it is sent (a restarted engine emits the changes since its
// last checkpoint again), so receivers deduplicate by it.
type Change struct {
	ID        string     `json:"id"`
	Type      string     `json:"type"` // "enter" or "exit"
	Segment   string     `json:"segment"`
	UserID    string     `json:"user_id"`
	At        time.Time  `json:"at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// DeadLetter is a change whose delivery was given up.
type DeadLetter struct {
	ID        int64     `json:"id"`
	Change    Change    `json:"change"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error"`
	DeadAt    time.Time `json:"dead_at"`
}

// ChangeID is the deterministic id of a change.
func ChangeID(segment, userID, kind string, at time.Time) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d", segment, userID, kind, at.UnixMilli())
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Payload is the body of one delivery: a batch of changes for one webhook.
type Payload struct {
	Webhook string   `json:"webhook"`
	Changes []Change `json:"changes"`
}

// Header names of a delivery.
const (
	SignatureHeader = "Lift-Signature"
	WebhookHeader   = "Lift-Webhook"
)

// Sign returns the Lift-Signature header value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>." + body)>". Signing the
// timestamp with the body lets receivers reject replays of old deliveries.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is returned by Verify for a missing, malformed, wrong or stale
// signature.
var ErrBadSignature = errors.New("webhooks: bad signature")

// Verify checks a Lift-Signature header against the raw body, as a receiver should:
// the HMAC must match (compared in constant time) and the timestamp be within
// tolerance of now. It returns an error wrapping ErrBadSignature otherwise.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("%w: want t=<unix>,v1=<hex>", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %s is outside the tolerance", ErrBadSignature, ts)
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return fmt.Errorf("%w: HMAC mismatch", ErrBadSignature)
	}
	return nil
}
