// Package client is lift's Go client for backend services: decisions with a local
// cache that rides out lift outages, and events sent over HTTP with retries and
// idempotent ids (web/client/amqpclient sends them straight to RabbitMQ instead).
// It imports only the standard library and github.com/google/uuid. See docs/sdk.md.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Config configures a Client. BaseURL and Key are required.
type Config struct {
	BaseURL string // lift's base URL, such as http://lift:8080
	Key     string // a client or server key
	// HTTPClient defaults to a client with a 10 s timeout.
	HTTPClient *http.Client
	// CacheTTL is how long a decision answer is reused (default 30 s; negative: no cache).
	CacheTTL time.Duration
	// MaxStale is how long past CacheTTL a cached answer is still returned (with
	// ErrStale) when lift cannot be reached (default 5 minutes).
	MaxStale time.Duration
	// CacheSize bounds the cached answers (default 10,000; least recently used go first).
	CacheSize int
	// NoExposures asks lift not to log exposures at decide time ("track": false):
	// the caller logs them itself when it shows the variant (Decision.Exposure).
	NoExposures bool
}

// Client talks to one lift server. It is safe for concurrent use.
type Client struct {
	cfg   Config
	http  *http.Client
	cache *cache
}

// ErrStale accompanies decisions served from an expired cache entry because lift could
// not be reached; the decisions are usable, the error says why they are old.
var ErrStale = errors.New("lift client: lift unreachable; serving cached decisions")

// New returns a client. It fails only on an invalid Config.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.BaseURL == "":
		return nil, errors.New("lift client: Config.BaseURL is required")
	case cfg.Key == "":
		return nil, errors.New("lift client: Config.Key is required")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	if cfg.MaxStale == 0 {
		cfg.MaxStale = 5 * time.Minute
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10_000
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{cfg: cfg, http: hc, cache: newCache(cfg.CacheSize)}, nil
}

// Decision is what one experiment or flag gives a user.
type Decision struct {
	Variant    string          `json:"variant"`
	Value      json.RawMessage `json:"value"`
	Reason     string          `json:"reason"`
	Experiment bool            `json:"experiment"`
	// Exposure is set, with Config.NoExposures, on decisions that assigned the user
	// to an experiment: the properties of the $exposure event to send when the
	// variant is shown.
	Exposure map[string]any `json:"exposure,omitempty"`
}

// Decisions is a /v1/decide answer.
type Decisions struct {
	UserID    string              `json:"user_id"`
	Decisions map[string]Decision `json:"decisions"`
	// Sticky is the sticky-bucket document for bandits: pass it back in
	// DecideRequest.Sticky to keep the user on their arm.
	Sticky map[string]string `json:"sticky,omitempty"`
	// UnknownKeys are the keys asked for that no experiment or flag has (a typo, or
	// one deleted since).
	UnknownKeys []string `json:"unknown_keys,omitempty"`
}

// Variant is the variant served for key, or "" when lift does not know key.
func (d Decisions) Variant(key string) string { return d.Decisions[key].Variant }

// Value decodes the value served for key into dst; it reports false when key is
// unknown or its value does not decode into dst.
func (d Decisions) Value(key string, dst any) bool {
	v, ok := d.Decisions[key]
	return ok && json.Unmarshal(v.Value, dst) == nil
}

// DecideRequest is a full decide request; Decide covers the common case.
type DecideRequest struct {
	UserID     string            `json:"user_id"`
	Attributes map[string]any    `json:"attributes,omitempty"`
	Keys       []string          `json:"keys,omitempty"`
	Sticky     map[string]string `json:"sticky,omitempty"`
	Consent    *Consent          `json:"consent,omitempty"`
}

// Consent is the user's consent, passed through to lift (docs/privacy.md).
type Consent struct {
	Analytics       bool `json:"analytics"`
	Personalization bool `json:"personalization"`
}

// Decide returns the decisions for a user, for keys (every experiment and flag when
// none). See DecideRequest for the error contract.
func (c *Client) Decide(ctx context.Context, userID string, attributes map[string]any, keys ...string) (Decisions, error) {
	return c.DecideRequest(ctx, DecideRequest{UserID: userID, Attributes: attributes, Keys: keys})
}

// DecideRequest returns the decisions for r, from the cache while fresh. When lift
// cannot be reached (network error, 5xx) and an expired entry is younger than
// MaxStale, it returns that entry with ErrStale; otherwise the error, which is an
// *HTTPError when lift answered with an error status.
func (c *Client) DecideRequest(ctx context.Context, r DecideRequest) (Decisions, error) {
	body, err := json.Marshal(struct {
		DecideRequest
		Track bool `json:"track"`
	}{r, !c.cfg.NoExposures})
	if err != nil {
		return Decisions{}, fmt.Errorf("lift client: encode decide request: %w", err)
	}
	if c.cfg.CacheTTL < 0 {
		return c.decide(ctx, body)
	}
	key := string(body)
	e := c.cache.entry(key)
	e.mu.Lock()
	defer e.mu.Unlock() // concurrent callers for one entry wait for one request
	if e.ok && time.Since(e.at) < c.cfg.CacheTTL {
		return e.d, nil
	}
	d, err := c.decide(ctx, body)
	switch {
	case err == nil:
		e.d, e.at, e.ok = d, time.Now(), true
		return d, nil
	case e.ok && unreachable(err) && time.Since(e.at) < c.cfg.CacheTTL+c.cfg.MaxStale:
		return e.d, fmt.Errorf("%w: %v", ErrStale, err)
	}
	return Decisions{}, err
}

func (c *Client) decide(ctx context.Context, body []byte) (Decisions, error) {
	resp, err := c.post(ctx, "/v1/decide", body)
	if err != nil {
		return Decisions{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Decisions{}, httpError(resp)
	}
	var d Decisions
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return Decisions{}, fmt.Errorf("lift client: decode decide answer: %w", err)
	}
	return d, nil
}

// Event is one event for /v1/events (or RabbitMQ). ID and Timestamp are set by
// Track when empty; keep the ID to retry an event idempotently.
type Event struct {
	ID         string         `json:"event_id"`
	Type       string         `json:"type"`
	UserID     string         `json:"user_id"`
	Timestamp  time.Time      `json:"timestamp"`
	Value      float64        `json:"value"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Prepare gives events without an ID or timestamp a fresh UUIDv7 and the current
// time, in place; sinks call it so a retry resends the same ids.
func Prepare(events []Event) {
	now := time.Now().UTC()
	for i := range events {
		if events[i].ID == "" {
			events[i].ID = uuid.Must(uuid.NewV7()).String()
		}
		if events[i].Timestamp.IsZero() {
			events[i].Timestamp = now
		}
	}
}

// RejectedError lists the events lift refused as invalid; the others were accepted.
type RejectedError struct {
	Rejected []Rejection
}

// Rejection is one refused event: its index in the request and lift's reason.
type Rejection struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

func (e *RejectedError) Error() string {
	parts := make([]string, len(e.Rejected))
	for i, r := range e.Rejected {
		parts[i] = fmt.Sprintf("event %d: %s", r.Index, r.Error)
	}
	return "lift client: events rejected: " + strings.Join(parts, "; ")
}

// HTTPError is an error status from lift.
type HTTPError struct {
	Status     int
	Message    string
	RetryAfter time.Duration // from Retry-After, on 429 and 503
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("lift client: HTTP %d: %s", e.Status, e.Message)
}

// Track sends events and returns once lift confirmed every accepted one (202). It
// retries network errors, 429 and 5xx with backoff (honouring Retry-After) until ctx
// ends; events keep their ids across retries, so none is stored twice. Events lift
// refused as invalid come back in a *RejectedError; other failures are *HTTPError
// or the last network error.
func (c *Client) Track(ctx context.Context, events ...Event) error {
	return c.Send(ctx, events)
}

// Send is Track for a slice: it makes *Client a Sink for a Batcher.
func (c *Client) Send(ctx context.Context, events []Event) error {
	return c.send(ctx, nil, events)
}

// TrackConsent is Track for events of users who gave (or refused) consent: lift
// applies it to the whole request (docs/privacy.md), so send one user's events, or
// events of users with the same consent, together.
func (c *Client) TrackConsent(ctx context.Context, consent Consent, events ...Event) error {
	return c.send(ctx, &consent, events)
}

func (c *Client) send(ctx context.Context, consent *Consent, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	Prepare(events)
	body, err := json.Marshal(struct {
		Events  []Event  `json:"events"`
		Consent *Consent `json:"consent,omitempty"`
	}{events, consent})
	if err != nil {
		return fmt.Errorf("lift client: encode events: %w", err)
	}
	delay := 100 * time.Millisecond
	for {
		err := c.sendOnce(ctx, body)
		if err == nil || !retryable(err) {
			return err
		}
		wait := delay
		var he *HTTPError
		if errors.As(err, &he) && he.RetryAfter > 0 {
			wait = he.RetryAfter
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (c *Client) sendOnce(ctx context.Context, body []byte) error {
	resp, err := c.post(ctx, "/v1/events", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Rejected []Rejection `json:"rejected"`
	}
	switch resp.StatusCode {
	case http.StatusAccepted:
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return fmt.Errorf("lift client: decode events answer: %w", err)
		}
	case http.StatusBadRequest:
		// Every event invalid: the 400 lists them as a 202 would. A 400 without
		// the list (malformed JSON) is an HTTPError.
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(data, &out) != nil || len(out.Rejected) == 0 {
			resp.Body = io.NopCloser(bytes.NewReader(data))
			return httpError(resp)
		}
	default:
		return httpError(resp)
	}
	if len(out.Rejected) > 0 {
		return &RejectedError{Rejected: out.Rejected}
	}
	return nil
}

func (c *Client) post(ctx context.Context, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("lift client: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.cfg.Key)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("lift client: POST %s: %w", path, err)
	}
	return resp, nil
}

func httpError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var msg struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	text := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &msg) == nil && (msg.Message != "" || msg.Error != "") {
		text = msg.Message + msg.Error
	}
	e := &HTTPError{Status: resp.StatusCode, Message: text}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// unreachable reports whether err means lift did not answer (network) or failed (5xx).
func unreachable(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status >= 500
	}
	var re *RejectedError
	return !errors.As(err, &re) && !errors.Is(err, context.Canceled)
}

// retryable adds 429 to unreachable: the request was fine, lift asked to slow down.
func retryable(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusTooManyRequests {
		return true
	}
	return unreachable(err) && !errors.Is(err, context.DeadlineExceeded)
}
