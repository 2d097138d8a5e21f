package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest"
)

// DecideRequest is the body of POST /v1/decide.
type DecideRequest struct {
	UserID     string         `json:"user_id"`
	Attributes map[string]any `json:"attributes"`
	Keys       []string       `json:"keys"`
	Track      *bool          `json:"track"`
	// Sticky is the sticky-bucket document of an earlier answer, sent back by the
	// client: {"<experiment>": "<variant>"}.
	Sticky map[string]string `json:"sticky"`
	// Consent is what the user agreed to (docs/privacy.md); nil: the server's default.
	Consent *ingest.Consent `json:"consent"`
	// Segments asks for the keys of the segments the user is in, which GrowthBook SDKs
	// evaluating locally take as the attribute lift_segments (docs/sdk.md).
	Segments bool `json:"segments"`
	// Features asks for the user's real-time features (docs/recommendations.md).
	Features bool `json:"features"`
}

// decideBuffers are reused across requests to keep the decision path free of
// per-request allocations for the result list and the response body.
type decideBuffers struct {
	decisions []experiments.Keyed
	logged    []string // experiments whose exposure this request logged
	unknown   []string // requested keys no experiment or flag has
	out       []byte
}

var decidePool = sync.Pool{New: func() any { return &decideBuffers{} }}

// maxUserIDLen bounds ids so they fit the storage columns and hashing stays cheap.
const maxUserIDLen = 256

// MaxDecideKeys bounds the keys one decide request may name, so that one request
// cannot make lift decide (and log exposures) thousands of times. It is far above
// what one page asks for; a client that wants everything sends no keys.
const MaxDecideKeys = 1000

// ParseDecideRequest decodes and checks a decide body. Errors name the field. Keys
// come back without repeats (the first of each kept, in order); more than
// MaxDecideKeys of them, repeats included, are refused.
func ParseDecideRequest(body []byte) (DecideRequest, error) {
	var r DecideRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return r, decodeRequestError(err, decideFieldTypes, `{"user_id":"u1"}`)
	}
	switch {
	case r.UserID == "":
		return r, badRequest("user_id", "is required")
	case len(r.UserID) > maxUserIDLen:
		return r, badRequest("user_id", "must be at most 256 bytes")
	case len(r.Keys) > MaxDecideKeys:
		return r, badRequest("keys", "must name at most "+strconv.Itoa(MaxDecideKeys)+" keys, got "+strconv.Itoa(len(r.Keys))+"; send no keys to get every experiment and flag")
	}
	r.Keys = uniqueKeys(r.Keys)
	return r, nil
}

// uniqueKeys drops repeated keys in place, keeping the first of each. Short lists,
// the usual case, are checked pairwise so that deciding needs no map.
func uniqueKeys(keys []string) []string {
	out := keys[:0]
	if len(keys) <= 16 {
		for _, k := range keys {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
		return out
	}
	seen := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

// decideFieldTypes says what each field of a decide request must be, for errors that
// name what is expected rather than what was sent.
var decideFieldTypes = map[string]string{
	"user_id":    "a string",
	"attributes": "an object",
	"keys":       "an array of strings",
	"track":      "true or false",
	"sticky":     `an object of strings, {"<experiment>":"<variant>"}`,
	"consent":    `an object such as {"analytics":true,"personalization":true}`,
}

// unknownKeys appends to dst the requested keys that got no decision: Decide answers
// the keys it knows in the order asked, so one pass over both finds the others.
func unknownKeys(keys []string, decided []experiments.Keyed, dst []string) []string {
	j := 0
	for _, k := range keys {
		if j < len(decided) && decided[j].Key == k {
			j++
			continue
		}
		dst = append(dst, k)
	}
	return dst
}

func readBody(c echo.Context) ([]byte, error) {
	var buf bytes.Buffer
	// Sized from Content-Length (the body limit has refused anything larger), so a
	// batch of events is read without regrowing the buffer; ReadFrom wants MinRead
	// spare bytes to see the end.
	if n := c.Request().ContentLength; n > 0 {
		buf.Grow(int(min(n, 16<<20)) + bytes.MinRead)
	}
	if _, err := io.Copy(&buf, c.Request().Body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, echo.ErrStatusRequestEntityTooLarge
		}
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return nil, he
		}
		return nil, badRequest("(body)", "could not be read: "+err.Error())
	}
	return buf.Bytes(), nil
}

func (s *server) decide(c echo.Context) error {
	start := time.Now()
	body, err := readBody(c)
	if err != nil {
		return err
	}
	req, err := ParseDecideRequest(body)
	if err != nil {
		return err
	}
	buf := decidePool.Get().(*decideBuffers)
	defer decidePool.Put(buf)
	consent := s.Privacy.Consent(req.Consent)
	// Everything past the edge sees the pseudonym; the answer names the user as the
	// client did.
	userID := s.Privacy.UserID(req.UserID)
	snap := s.Snapshots.Snapshot()
	if !consent.Personalization {
		snap = snap.Impersonal()
	}
	buf.decisions = snap.Decide(userID, req.Attributes, req.Keys, buf.decisions[:0])
	sticky := snap.Stick(req.Sticky, buf.decisions)
	track := req.Track == nil || *req.Track
	if s.Exposures != nil && track && consent.Analytics {
		buf.logged = s.logExposures(userID, buf.decisions, buf.logged[:0])
	}
	var segments []string
	if req.Segments {
		segments = snap.MemberSegments(userID, req.Attributes)
	}
	buf.unknown = unknownKeys(req.Keys, buf.decisions, buf.unknown[:0])
	buf.out = appendDecideResponse(buf.out[:0], req.UserID, buf.decisions, sticky, !track, segments, buf.unknown)
	if req.Features {
		buf.out = appendFeatures(buf.out, snap.UserFeatures(userID))
	}
	s.metrics.observeDecide(buf.decisions, time.Since(start))
	return c.JSONBlob(http.StatusOK, buf.out)
}
