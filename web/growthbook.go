package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/gbpayload"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/web/auth"
)

// GrowthBook's SDK protocol (docs/sdk.md): GET /api/features/{client key} serves the
// feature payload gbpayload builds from the snapshot, GET /sub/{client key} streams it
// as server-sent events whenever the snapshot changes, and POST /api/eval/{client key}
// is remote evaluation by lift's own decider. The key is in the URL, as the SDKs send
// it; only client keys are accepted there.

// featuresCacheControl is what GrowthBook's own server sends with the payload: caches
// may serve it for 30 s, and stale while they revalidate (an hour) or while lift is
// unreachable (ten hours).
const featuresCacheControl = "public, max-age=30, stale-while-revalidate=3600, stale-if-error=36000"

// Defaults of Deps.StreamHeartbeat and Deps.StreamsPerKey.
const (
	DefaultStreamHeartbeat = 25 * time.Second
	DefaultStreamsPerKey   = 10_000
)

// growthbook is the protocol's state: the payload of the current snapshot, built once
// per version, and the open streams per key.
type growthbook struct {
	cache   atomic.Pointer[gbPayload]
	buildMu sync.Mutex

	streamsMu sync.Mutex
	streams   map[int64]int
}

// gbPayload is the payload of one snapshot version, also gzipped: a payload of 400
// experiments and flags is about 220 KiB, a tenth of that compressed, and every SDK
// accepts gzip.
type gbPayload struct {
	version        string
	date           time.Time
	body, gz       []byte
	etag, gzipETag string
}

// payload returns the payload of snap. dateUpdated is when this process first served
// the version, kept increasing: SDKs ignore a payload whose date they have (the JS
// SDK) or one older than theirs (the Go SDK).
func (g *growthbook) payload(snap *experiments.Snapshot) (*gbPayload, error) {
	if p := g.cache.Load(); p != nil && p.version == snap.Version {
		return p, nil
	}
	g.buildMu.Lock()
	defer g.buildMu.Unlock()
	prev := g.cache.Load()
	if prev != nil && prev.version == snap.Version {
		return prev, nil
	}
	date := time.Now().UTC().Truncate(time.Millisecond)
	if prev != nil && !date.After(prev.date) {
		date = prev.date.Add(time.Millisecond)
	}
	body, err := json.Marshal(gbpayload.Build(snap, date))
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // once per version
	_, _ = zw.Write(body)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	digest := sha256.Sum256(body)
	sum := hex.EncodeToString(digest[:16])
	p := &gbPayload{version: snap.Version, date: date, body: body, gz: gz.Bytes(), etag: `"` + sum + `"`, gzipETag: `"` + sum + `-gzip"`}
	g.cache.Store(p)
	return p, nil
}

// urlKey admits requests whose path carries an active client key. A server key is
// refused: it would sit in page source and logs, and it can change configuration.
func (s *server) urlKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		k, ok := s.Keys.Lookup(c.Param("key"))
		switch {
		case !ok:
			return echo.NewHTTPError(http.StatusUnauthorized, "unknown or revoked client key in the URL")
		case k.Kind != auth.ClientKey:
			return echo.NewHTTPError(http.StatusForbidden, "a server key must never be used in a URL (it would end up in browsers and logs): use a client key, and revoke this one if it was exposed")
		}
		if origin := c.Request().Header.Get("Origin"); origin != "" && !sameOrigin(origin, c.Request()) && !k.AllowsOrigin(origin) {
			return echo.NewHTTPError(http.StatusForbidden, "origin "+origin+" may not use this API key (see its allowed_origins)")
		}
		c.Set(keyContext, k)
		return next(c)
	}
}

// gbFeatures is GET /api/features/{client key}.
func (s *server) gbFeatures(c echo.Context) error {
	p, err := s.gb.payload(s.Snapshots.Snapshot())
	if err != nil {
		return err
	}
	h := c.Response().Header()
	gzipped := acceptsGzip(c.Request().Header.Get("Accept-Encoding"))
	etag := p.etag
	if gzipped {
		etag = p.gzipETag
	}
	h.Set("ETag", etag)
	h.Set("Cache-Control", featuresCacheControl)
	h.Add("Vary", "Accept-Encoding")
	// The SDKs open /sub/{client key} only when the payload says streaming works.
	h.Set("X-SSE-Support", "enabled")
	inm := c.Request().Header.Get("If-None-Match")
	if etagMatches(inm, p.etag) || etagMatches(inm, p.gzipETag) {
		return c.NoContent(http.StatusNotModified)
	}
	if gzipped {
		h.Set("Content-Encoding", "gzip")
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, p.gz)
	}
	return c.JSONBlob(http.StatusOK, p.body)
}

// acceptsGzip reads Accept-Encoding loosely: gzip listed without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// changeNotifier is implemented by experiments.Live.
type changeNotifier interface {
	Changed() <-chan struct{}
}

// gbStream is GET /sub/{client key}: a features event with the whole payload on
// connect and after every change of the snapshot's version (configuration, bandit
// weights), a comment as heartbeat so that proxies keep the connection, and at most
// StreamsPerKey streams per key (429 beyond).
func (s *server) gbStream(c echo.Context) error {
	k := c.Get(keyContext).(auth.Key)
	if !s.gb.openStream(k.ID, s.streamsPerKey()) {
		return echo.NewHTTPError(http.StatusTooManyRequests, "too many open streams for this client key; retry later")
	}
	defer s.gb.closeStream(k.ID)

	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise buffer the events
	w.WriteHeader(http.StatusOK)

	notifier, _ := s.Snapshots.(changeNotifier)
	var changed <-chan struct{}
	var poll <-chan time.Time
	if notifier != nil {
		changed = notifier.Changed() // before reading the snapshot, so no change is missed
	} else {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		poll = t.C
	}
	sent := ""
	send := func() error {
		p, err := s.gb.payload(s.Snapshots.Snapshot())
		if err != nil || p.version == sent {
			return err
		}
		sent = p.version
		if _, err := w.Write(append(append([]byte("event: features\ndata: "), p.body...), "\n\n"...)); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	if err := send(); err != nil {
		return nil // the client went away; nothing to answer
	}
	heartbeat := time.NewTicker(s.streamHeartbeat())
	defer heartbeat.Stop()
	for {
		select {
		case <-c.Request().Context().Done():
			return nil
		case <-s.StreamsDone:
			return nil
		case <-changed:
			changed = notifier.Changed()
		case <-poll:
		case <-heartbeat.C:
			if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil {
				return nil
			}
			w.Flush()
			continue
		}
		if err := send(); err != nil {
			return nil
		}
	}
}

func (s *server) streamHeartbeat() time.Duration {
	if s.StreamHeartbeat > 0 {
		return s.StreamHeartbeat
	}
	return DefaultStreamHeartbeat
}

func (s *server) streamsPerKey() int {
	if s.StreamsPerKey > 0 {
		return s.StreamsPerKey
	}
	return DefaultStreamsPerKey
}

func (g *growthbook) openStream(key int64, limit int) bool {
	g.streamsMu.Lock()
	defer g.streamsMu.Unlock()
	if g.streams[key] >= limit {
		return false
	}
	g.streams[key]++
	return true
}

func (g *growthbook) closeStream(key int64) {
	g.streamsMu.Lock()
	defer g.streamsMu.Unlock()
	if g.streams[key]--; g.streams[key] <= 0 {
		delete(g.streams, key)
	}
}

// remoteEvalRequest is what GrowthBook's SDKs post for remote evaluation. lift
// evaluates the attributes; forced variations, forced features and the URL are the
// SDK's own overrides, which it applies locally.
type remoteEvalRequest struct {
	Attributes       map[string]any  `json:"attributes"`
	ForcedVariations map[string]any  `json:"forcedVariations"`
	ForcedFeatures   json.RawMessage `json:"forcedFeatures"`
	URL              string          `json:"url"`
}

// Attributes of remote evaluation with a meaning of their own: the user id (which
// SDKs hash), consent as in /v1/decide, and the sticky-bucket document of a previous
// answer (its "sticky"), which keeps bandit users on their arm.
const (
	consentAttribute = "consent"
	stickyAttribute  = "lift_sticky"
)

// parseRemoteEval reads and checks a remote-evaluation body; errors name the field.
func parseRemoteEval(body []byte) (req remoteEvalRequest, id string, consent *ingest.Consent, sticky map[string]string, err error) {
	if err := json.Unmarshal(body, &req); err != nil {
		return req, "", nil, nil, decodeRequestError(err, map[string]string{"attributes": "an object of attributes with id (the user id)"}, `{"attributes":{"id":"u1"}}`)
	}
	if req.Attributes == nil {
		return req, "", nil, nil, badRequest("attributes", "is required: an object with at least id (the user id)")
	}
	id, _ = req.Attributes[gbpayload.HashAttribute].(string)
	switch {
	case id == "":
		return req, "", nil, nil, badRequest("attributes.id", "is required: a non-empty string, the user id")
	case len(id) > maxUserIDLen:
		return req, "", nil, nil, badRequest("attributes.id", "must be at most 256 bytes")
	}
	if raw, ok := req.Attributes[consentAttribute]; ok {
		m, isObject := raw.(map[string]any)
		a, okA := m["analytics"].(bool)
		p, okP := m["personalization"].(bool)
		_, hasA := m["analytics"]
		_, hasP := m["personalization"]
		if !isObject || hasA && !okA || hasP && !okP {
			return req, "", nil, nil, badRequest("attributes.consent", "must be an object of booleans analytics and personalization")
		}
		consent = &ingest.Consent{Analytics: a, Personalization: p}
	}
	if raw, ok := req.Attributes[stickyAttribute]; ok {
		m, isObject := raw.(map[string]any)
		if !isObject {
			return req, "", nil, nil, badRequest("attributes."+stickyAttribute, "must be an object of experiment keys to variant keys")
		}
		sticky = make(map[string]string, len(m))
		for exp, v := range m {
			variant, ok := v.(string)
			if !ok {
				return req, "", nil, nil, badRequest("attributes."+stickyAttribute+"."+exp, "must be a variant key (a string)")
			}
			sticky[exp] = variant
		}
	}
	return req, id, consent, sticky, nil
}

// gbRemoteEval is POST /api/eval/{client key}: every feature decided by lift for the
// attributes, exposures logged as /v1/decide logs them.
func (s *server) gbRemoteEval(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	req, id, reqConsent, stickyIn, err := parseRemoteEval(body)
	if err != nil {
		return err
	}
	consent := s.Privacy.Consent(reqConsent)
	userID := s.Privacy.UserID(id)
	snap := s.Snapshots.Snapshot()
	if !consent.Personalization {
		snap = snap.Impersonal()
	}
	decisions := snap.Decide(userID, req.Attributes, nil, nil)
	sticky := snap.Stick(stickyIn, decisions)
	stuck := map[string]bool{}
	for exp, v := range sticky {
		if stickyIn[exp] == v {
			stuck[exp] = true
		}
	}
	logged := s.Exposures != nil && consent.Analytics
	if logged {
		s.logExposures(userID, decisions, nil)
	}
	// A new date on every answer: the JS SDK drops an answer dated as the one it has,
	// and a user's answer changes with their segments, not only with the configuration.
	out, err := json.Marshal(gbpayload.Evaluate(snap, decisions, id, sticky, stuck, logged, time.Now()))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSONBlob(http.StatusOK, out)
}
