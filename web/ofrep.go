package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest"
)

// OFREP: the OpenFeature Remote Evaluation Protocol (open-feature/protocol,
// service/openapi.yaml). Experiments evaluate as flags whose variant is the variant key.

type ofrepRequest struct {
	Context map[string]any `json:"context"`
}

type ofrepResult struct {
	Key          string          `json:"key"`
	Reason       string          `json:"reason,omitempty"`
	Variant      string          `json:"variant,omitempty"`
	Value        json.RawMessage `json:"value,omitempty"`
	ErrorCode    string          `json:"errorCode,omitempty"`
	ErrorDetails string          `json:"errorDetails,omitempty"`
	Metadata     map[string]any  `json:"metadata,omitempty"`
}

type ofrepBulk struct {
	Flags    []ofrepResult  `json:"flags"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// ofrepReasons maps lift's reasons to OpenFeature's resolution reasons.
var ofrepReasons = map[experiments.Reason]string{
	experiments.ReasonSplit:          "SPLIT",
	experiments.ReasonBandit:         "SPLIT",
	experiments.ReasonTargetingMatch: "TARGETING_MATCH",
	experiments.ReasonDefault:        "STATIC",
	experiments.ReasonDisabled:       "DISABLED",
	experiments.ReasonNotEligible:    "STATIC",
}

// ofrepContext is an evaluation context: the targeting key is the user id, an
// optional "consent" object ({"personalization": bool, "analytics": bool}, as in
// /v1/decide) says what the user agreed to, and the rest are the attributes.
type ofrepContext struct {
	userID  string
	attrs   map[string]any
	consent *ingest.Consent
}

// snapshot is the snapshot to evaluate the context with.
func (s *server) ofrepSnapshot(oc ofrepContext) *experiments.Snapshot {
	snap := s.Snapshots.Snapshot()
	if !s.Privacy.Consent(oc.consent).Personalization {
		snap = snap.Impersonal()
	}
	return snap
}

// parseOFREP reads the evaluation context.
func (s *server) parseOFREP(c echo.Context, key string) (oc ofrepContext, failure *ofrepResult, err error) {
	body, err := readBody(c)
	if err != nil {
		return oc, nil, err
	}
	var req ofrepRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return oc, &ofrepResult{Key: key, ErrorCode: "PARSE_ERROR", ErrorDetails: "body is not a JSON object with a context object"}, nil
	}
	if req.Context == nil {
		return oc, &ofrepResult{Key: key, ErrorCode: "INVALID_CONTEXT", ErrorDetails: "context is required"}, nil
	}
	tk, _ := req.Context["targetingKey"].(string)
	if tk == "" {
		return oc, &ofrepResult{Key: key, ErrorCode: "TARGETING_KEY_MISSING", ErrorDetails: "context.targetingKey (the user id) is required"}, nil
	}
	delete(req.Context, "targetingKey")
	if raw, ok := req.Context["consent"]; ok {
		m, isObject := raw.(map[string]any)
		a, okA := m["analytics"].(bool)
		p, okP := m["personalization"].(bool)
		_, hasA := m["analytics"]
		_, hasP := m["personalization"]
		if !isObject || hasA && !okA || hasP && !okP {
			return oc, &ofrepResult{Key: key, ErrorCode: "INVALID_CONTEXT", ErrorDetails: "context.consent must be an object of booleans analytics and personalization"}, nil
		}
		oc.consent = &ingest.Consent{Analytics: a, Personalization: p}
		delete(req.Context, "consent")
	}
	oc.userID, oc.attrs = s.Privacy.UserID(tk), req.Context
	return oc, nil, nil
}

func toOFREP(key string, d experiments.Decision) ofrepResult {
	r := ofrepResult{Key: key, Reason: ofrepReasons[d.Reason], Variant: d.Variant, Value: d.Value}
	if d.Experiment {
		r.Metadata = map[string]any{"experiment": true}
	}
	// OFREP evaluations log no exposure; the metadata says what to log when the
	// variant is shown (lift.js's OpenFeature hook does, see docs/sdk.md).
	if d.Assigned {
		if r.Metadata == nil {
			r.Metadata = map[string]any{}
		}
		r.Metadata["experimentKey"] = d.ExperimentKey
		r.Metadata["assignmentProbability"] = d.Probability
		if d.Segment != "" {
			r.Metadata["segment"] = d.Segment
		}
	}
	return r
}

func (s *server) ofrepOne(c echo.Context) error {
	key := c.Param("key")
	oc, failure, err := s.parseOFREP(c, key)
	if err != nil {
		return err
	}
	if failure != nil {
		return c.JSON(http.StatusBadRequest, failure)
	}
	d, ok := s.ofrepSnapshot(oc).Evaluate(key, oc.userID, oc.attrs)
	if !ok {
		return c.JSON(http.StatusNotFound, ofrepResult{Key: key, ErrorCode: "FLAG_NOT_FOUND", ErrorDetails: "flag '" + key + "' was not found"})
	}
	return c.JSON(http.StatusOK, toOFREP(key, d))
}

// ofrepBulk evaluates every flag and experiment. The ETag is a digest of the answer
// itself, so it changes exactly when this context's evaluation changes, whether
// through the configuration or the context.
func (s *server) ofrepBulk(c echo.Context) error {
	oc, failure, err := s.parseOFREP(c, "")
	if err != nil {
		return err
	}
	if failure != nil {
		return c.JSON(http.StatusBadRequest, map[string]string{"errorCode": failure.ErrorCode, "errorDetails": failure.ErrorDetails})
	}
	snap := s.ofrepSnapshot(oc)
	out := ofrepBulk{Flags: make([]ofrepResult, 0, len(snap.Keys())), Metadata: map[string]any{"version": snap.Version}}
	for _, key := range snap.Keys() {
		d, _ := snap.Evaluate(key, oc.userID, oc.attrs)
		out.Flags = append(out.Flags, toOFREP(key, d))
	}
	body, err := json.Marshal(out)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	c.Response().Header().Set("ETag", etag)
	if etagMatches(c.Request().Header.Get("If-None-Match"), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSONBlob(http.StatusOK, body)
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 §13.1.2): the header
// may list several tags, weak or strong, or "*".
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
