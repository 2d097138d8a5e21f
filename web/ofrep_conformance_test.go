package web_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/liftlab/lift/internal/conformance"
	"github.com/liftlab/lift/internal/openapi"
)

// OFREP conformance: lift's answers on /ofrep/v1/* validated against the schemas that
// open-feature/protocol's service/openapi.yaml (version 0.3.0, vendored with its licence
// and source in internal/conformance/ofrep) gives for the path, method and status of
// each response.

const (
	ofrepOne  = "/ofrep/v1/evaluate/flags/{key}"
	ofrepBulk = "/ofrep/v1/evaluate/flags"
)

// loadOFREPSpec parses the document as published, without errata.
func loadOFREPSpec(t *testing.T) *openapi.Doc {
	t.Helper()
	doc, err := openapi.Parse(conformance.Read(t, conformance.OFREPSpec))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// ofrepErrata are corrections to the published document (v0.3.0) without which its
// oneOf over flag value types cannot be satisfied by any flag that has a value: under
// JSON Schema (which OpenAPI 3.1 uses) oneOf means exactly one alternative matches.
// Each erratum only adds a constraint the document states in prose, and
// TestOFREPSpecErrata proves each one is still needed.
var ofrepErrata = []struct {
	name string
	// apply patches the parsed document.
	apply func(t *testing.T, doc *openapi.Doc)
	// intended is a single-flag 200 body the document means to allow but, unpatched,
	// rejects with "matches N oneOf alternatives".
	intended string
}{
	{
		// codeDefaultFlag is `type: object, properties: {}`, which every object matches,
		// so {"value":true} is both a booleanFlag and a codeDefaultFlag. Its description
		// says "This schema has no `value` property".
		name: "codeDefaultFlag has no value",
		apply: func(t *testing.T, doc *openapi.Doc) {
			s := schemaNode(t, doc, "#/components/schemas/codeDefaultFlag")
			s["not"] = map[string]any{"required": []any{"value"}}
		},
		intended: "", // the document's own example for this response (see the test)
	},
	{
		// Every integer is a JSON Schema number, so {"value":10} is both an integerFlag
		// and a floatFlag; the document separates "integer, float" as distinct types.
		name: "floatFlag is not an integer",
		apply: func(t *testing.T, doc *openapi.Doc) {
			s := schemaNode(t, doc, "#/components/schemas/floatFlag/properties/value")
			s["not"] = map[string]any{"type": "integer"}
		},
		intended: `{"key":"max-items","reason":"TARGETING_MATCH","variant":"pro","value":10}`,
	},
}

func schemaNode(t *testing.T, doc *openapi.Doc, ref string) map[string]any {
	t.Helper()
	n, err := doc.Pointer(ref)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := n.(map[string]any)
	if !ok {
		t.Fatalf("%s is %T, not a schema object", ref, n)
	}
	return m
}

// loadOFREPSpecWithErrata parses the document and applies ofrepErrata.
func loadOFREPSpecWithErrata(t *testing.T) *openapi.Doc {
	t.Helper()
	doc := loadOFREPSpec(t)
	for _, e := range ofrepErrata {
		e.apply(t, doc)
	}
	return doc
}

// responseExample is the example the document gives for a response's JSON content.
func responseExample(t *testing.T, doc *openapi.Doc, path, status string) any {
	t.Helper()
	r, err := doc.Response(path, "post", status)
	if err != nil {
		t.Fatal(err)
	}
	content, _ := r.Node["content"].(map[string]any)
	mt, _ := content["application/json"].(map[string]any)
	ex, ok := mt["example"]
	if !ok {
		t.Fatalf("%s %s has no example", path, status)
	}
	return ex
}

func responseSchema(t *testing.T, doc *openapi.Doc, path, status string) any {
	t.Helper()
	r, err := doc.Response(path, "post", status)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := r.Schema("application/json")
	if !ok {
		t.Fatalf("%s %s has no application/json schema", path, status)
	}
	return s
}

// TestOFREPSpecErrata shows each erratum is needed (the published document rejects a
// body it intends to allow) and sufficient (the corrected document accepts it). When
// the upstream document is fixed, this test says which erratum to drop.
func TestOFREPSpecErrata(t *testing.T) {
	for _, e := range ofrepErrata {
		t.Run(e.name, func(t *testing.T) {
			raw, fixed := loadOFREPSpec(t), loadOFREPSpecWithErrata(t)
			var body any = e.intended
			if e.intended == "" {
				body = responseExample(t, raw, ofrepOne, "200")
			}
			validate := func(doc *openapi.Doc) error {
				s := responseSchema(t, doc, ofrepOne, "200")
				if str, ok := body.(string); ok {
					return doc.ValidateJSON(s, []byte(str))
				}
				return doc.Validate(s, body)
			}
			err := validate(raw)
			if err == nil {
				t.Fatalf("the published document now accepts %v: drop this erratum", body)
			}
			if !strings.Contains(err.Error(), "oneOf alternatives, want exactly one") {
				t.Fatalf("the published document rejects %v for another reason than the ambiguity: %v", body, err)
			}
			if err := validate(fixed); err != nil {
				t.Fatalf("the corrected document rejects %v: %v", body, err)
			}
		})
	}
}

// TestOFREPSpecExamples validates the document's own response examples against their
// schemas, to show the validator and the errata read the document as its authors meant.
func TestOFREPSpecExamples(t *testing.T) {
	doc := loadOFREPSpecWithErrata(t)
	tests := []struct {
		path, status string
		knownBad     string // a problem the published example has, "" when it is valid
	}{
		{ofrepOne, "200", ""},
		{ofrepOne, "400", ""},
		{ofrepOne, "404", ""},
		{ofrepOne, "500", ""},
		// The example lists a FLAG_NOT_FOUND item, but flags[] items are
		// evaluationSuccess (requires reason) or evaluationFailure (errorCode enum has
		// no FLAG_NOT_FOUND): the example does not match its own schema.
		{ofrepBulk, "200", `/flags/2: matches none of the oneOf alternatives`},
		{ofrepBulk, "400", ""},
		{ofrepBulk, "500", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.status, func(t *testing.T) {
			err := doc.Validate(responseSchema(t, doc, tt.path, tt.status), responseExample(t, doc, tt.path, tt.status))
			switch {
			case tt.knownBad == "" && err != nil:
				t.Fatal(err)
			case tt.knownBad != "" && err == nil:
				t.Fatalf("the example is valid now; expected %q", tt.knownBad)
			case tt.knownBad != "" && !strings.Contains(err.Error(), tt.knownBad):
				t.Fatalf("want %q, got %v", tt.knownBad, err)
			}
		})
	}
}

// ofrepCase is one request to an OFREP endpoint and what lift must answer.
type ofrepCase struct {
	name     string
	specPath string // the path as the document writes it
	urlPath  string
	body     string
	auth     string // see request.auth
	// etagFrom, when set, is a bulk body whose answer's ETag is sent as If-None-Match.
	etagFrom    string
	ifNoneMatch string
	status      int
	// check looks at the decoded body beyond the schema (nil: nothing more).
	check func(t *testing.T, body map[string]any, h http.Header)
}

const (
	ctxUS  = `{"context":{"targetingKey":"u1","country":"US"}}`
	ctxPro = `{"context":{"targetingKey":"u1","country":"CA","plan":"pro"}}`
)

// wantEval checks an evaluation's fields; variants maps each acceptable variant to its
// JSON value (several for experiments), as in the decide tests.
func wantEval(key, reason string, variants map[string]string, metadata string) func(t *testing.T, body map[string]any, _ http.Header) {
	return func(t *testing.T, body map[string]any, _ http.Header) {
		t.Helper()
		checkEval(t, body, key, reason, variants, metadata)
	}
}

func checkEval(t *testing.T, body map[string]any, key, reason string, variants map[string]string, metadata string) {
	t.Helper()
	if body["key"] != key || body["reason"] != reason {
		t.Errorf("key %v reason %v, want %s %s", body["key"], body["reason"], key, reason)
	}
	variant, _ := body["variant"].(string)
	value, ok := variants[variant]
	if !ok {
		t.Errorf("%s: variant %q, want one of %v", key, variant, sortedKeys(variants))
	} else if !jsonEqual(t, body["value"], value) {
		t.Errorf("%s: variant %q has value %v, want %s", key, variant, body["value"], value)
	}
	if metadata == "" {
		if _, has := body["metadata"]; has {
			t.Errorf("%s: unexpected metadata %v", key, body["metadata"])
		}
	} else if !jsonEqual(t, body["metadata"], metadata) {
		t.Errorf("%s: metadata %v, want %s", key, body["metadata"], metadata)
	}
}

func wantFailure(key, code string) func(t *testing.T, body map[string]any, _ http.Header) {
	return func(t *testing.T, body map[string]any, _ http.Header) {
		t.Helper()
		if key != "" && body["key"] != key {
			t.Errorf("key %v, want %s", body["key"], key)
		}
		if body["errorCode"] != code {
			t.Errorf("errorCode %v, want %s", body["errorCode"], code)
		}
		if d, _ := body["errorDetails"].(string); d == "" {
			t.Errorf("no errorDetails")
		}
	}
}

// wantBulk checks that a bulk answer evaluates every experiment and flag of the fixture
// once, with the same results as the single-flag endpoint gives for ctxUS.
func wantBulk(t *testing.T, body map[string]any, h http.Header) {
	t.Helper()
	flags, _ := body["flags"].([]any)
	var keys []string
	for _, f := range flags {
		m, _ := f.(map[string]any)
		key, _ := m["key"].(string)
		keys = append(keys, key)
		want := everyDecisionForUS[key]
		metadata := ""
		switch {
		case want.experiment && want.reason == "not_eligible":
			metadata = `{"experiment":true}`
		case want.experiment: // assigned: what to log as the exposure
			metadata = `{"experiment":true,"experimentKey":"` + key + `","assignmentProbability":0.5}`
		}
		checkEval(t, m, key, ofrepReason[want.reason], want.variants, metadata)
	}
	if got, want := slices.Sorted(slices.Values(keys)), sortedKeys(everyDecisionForUS); !slices.Equal(got, want) {
		t.Errorf("bulk keys %v, want %v", got, want)
	}
	if md, _ := body["metadata"].(map[string]any); md == nil || md["version"] == nil {
		t.Errorf("bulk metadata %v has no version", body["metadata"])
	}
}

// ofrepReason is how lift's decision reasons read in OFREP (see web/ofrep.go).
var ofrepReason = map[string]string{
	"split": "SPLIT", "bandit": "SPLIT", "targeting_match": "TARGETING_MATCH",
	"default": "STATIC", "disabled": "DISABLED", "not_eligible": "STATIC",
}

func TestOFREPConformance(t *testing.T) {
	doc := loadOFREPSpecWithErrata(t)
	h := newTestHandler(t, handlerOpts{})
	one := func(key string) string { return "/ofrep/v1/evaluate/flags/" + key }
	bulk := "/ofrep/v1/evaluate/flags"
	exp := `{"experiment":true}`
	// An assigned user's metadata also says what to log as the exposure (every
	// fixture experiment splits 50/50).
	assigned := func(key string) string {
		return `{"experiment":true,"experimentKey":"` + key + `","assignmentProbability":0.5}`
	}
	tests := []ofrepCase{
		// Single flag, 200 for every flag type and for experiments.
		{name: "boolean, targeting match", specPath: ofrepOne, urlPath: one("new-checkout"), body: ctxUS, status: 200,
			check: wantEval("new-checkout", "TARGETING_MATCH", map[string]string{"on": `true`}, "")},
		{name: "boolean, default", specPath: ofrepOne, urlPath: one("new-checkout"), body: ctxPro, status: 200,
			check: wantEval("new-checkout", "STATIC", map[string]string{"default": `false`}, "")},
		{name: "boolean, disabled", specPath: ofrepOne, urlPath: one("old-feature"), body: ctxUS, status: 200,
			check: wantEval("old-feature", "DISABLED", map[string]string{"default": `false`}, "")},
		{name: "string", specPath: ofrepOne, urlPath: one("banner-text"), body: ctxUS, status: 200,
			check: wantEval("banner-text", "STATIC", map[string]string{"default": `"Welcome"`}, "")},
		{name: "number, float", specPath: ofrepOne, urlPath: one("max-items"), body: ctxUS, status: 200,
			check: wantEval("max-items", "STATIC", map[string]string{"default": `2.5`}, "")},
		{name: "number, integer", specPath: ofrepOne, urlPath: one("max-items"), body: ctxPro, status: 200,
			check: wantEval("max-items", "TARGETING_MATCH", map[string]string{"pro": `10`}, "")},
		{name: "json object", specPath: ofrepOne, urlPath: one("theme"), body: ctxUS, status: 200,
			check: wantEval("theme", "STATIC", map[string]string{"default": `{"color":"blue","dark":false}`}, "")},
		{name: "experiment with values", specPath: ofrepOne, urlPath: one("hero-banner"), body: ctxUS, status: 200,
			check: wantEval("hero-banner", "SPLIT", everyDecisionForUS["hero-banner"].variants, assigned("hero-banner"))},
		{name: "experiment without values", specPath: ofrepOne, urlPath: one("button-color"), body: ctxUS, status: 200,
			check: wantEval("button-color", "SPLIT", everyDecisionForUS["button-color"].variants, assigned("button-color"))},
		{name: "experiment not running", specPath: ofrepOne, urlPath: one("draft-test"), body: ctxUS, status: 200,
			check: wantEval("draft-test", "STATIC", map[string]string{"control": `"c"`}, exp)},
		{name: "X-API-Key", specPath: ofrepOne, urlPath: one("banner-text"), body: ctxUS, auth: "x-api-key", status: 200,
			check: wantEval("banner-text", "STATIC", map[string]string{"default": `"Welcome"`}, "")},
		// Single flag, errors.
		{name: "parse error", specPath: ofrepOne, urlPath: one("banner-text"), body: `{"context":`, status: 400,
			check: wantFailure("banner-text", "PARSE_ERROR")},
		{name: "context not an object", specPath: ofrepOne, urlPath: one("banner-text"), body: `{"context":"u1"}`, status: 400,
			check: wantFailure("banner-text", "PARSE_ERROR")},
		{name: "missing context", specPath: ofrepOne, urlPath: one("banner-text"), body: `{}`, status: 400,
			check: wantFailure("banner-text", "INVALID_CONTEXT")},
		{name: "missing targetingKey", specPath: ofrepOne, urlPath: one("banner-text"), body: `{"context":{"country":"US"}}`, status: 400,
			check: wantFailure("banner-text", "TARGETING_KEY_MISSING")},
		{name: "flag not found", specPath: ofrepOne, urlPath: one("no-such-flag"), body: ctxUS, status: 404,
			check: wantFailure("no-such-flag", "FLAG_NOT_FOUND")},
		{name: "no key", specPath: ofrepOne, urlPath: one("banner-text"), body: ctxUS, auth: "none", status: 401},
		{name: "invalid key", specPath: ofrepOne, urlPath: one("banner-text"), body: ctxUS, auth: "invalid", status: 401},
		// Bulk.
		{name: "bulk", specPath: ofrepBulk, urlPath: bulk, body: ctxUS, status: 200, check: wantBulk},
		{name: "bulk, If-None-Match of the returned ETag", specPath: ofrepBulk, urlPath: bulk, body: ctxUS, etagFrom: ctxUS, status: 304},
		{name: "bulk, ETag of another context", specPath: ofrepBulk, urlPath: bulk, body: ctxUS, etagFrom: ctxPro, status: 200, check: wantBulk},
		{name: "bulk, stale ETag", specPath: ofrepBulk, urlPath: bulk, body: ctxUS, ifNoneMatch: `"0123"`, status: 200, check: wantBulk},
		{name: "bulk, parse error", specPath: ofrepBulk, urlPath: bulk, body: `not json`, status: 400,
			check: wantFailure("", "PARSE_ERROR")},
		{name: "bulk, missing targetingKey", specPath: ofrepBulk, urlPath: bulk, body: `{"context":{}}`, status: 400,
			check: wantFailure("", "TARGETING_KEY_MISSING")},
		{name: "bulk, no key", specPath: ofrepBulk, urlPath: bulk, body: ctxUS, auth: "none", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.specPath+" "+strconv.Itoa(tt.status)+" "+tt.name, func(t *testing.T) {
			req := request{method: http.MethodPost, path: tt.urlPath, body: strings.NewReader(tt.body), auth: tt.auth, header: map[string]string{}}
			if tt.etagFrom != "" {
				first := request{method: http.MethodPost, path: tt.urlPath, body: strings.NewReader(tt.etagFrom)}.do(t, h)
				etag := first.Header().Get("ETag")
				if first.Code != http.StatusOK || etag == "" {
					t.Fatalf("fetching the ETag: status %d, ETag %q", first.Code, etag)
				}
				req.header["If-None-Match"] = etag
			}
			if tt.ifNoneMatch != "" {
				req.header["If-None-Match"] = tt.ifNoneMatch
			}
			rec := req.do(t, h)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			checkAgainstSpec(t, doc, tt.specPath, rec)
			if tt.check != nil {
				tt.check(t, decodeObject(t, rec.Body.Bytes()), rec.Header())
			}
		})
	}
}

// checkAgainstSpec checks a response against what the document defines for its path
// and status: the status must be defined; a body must have the declared media type and
// match the declared schema; declared headers must be present; a response the document
// gives no content must have no body, except 401 (see below).
func checkAgainstSpec(t *testing.T, doc *openapi.Doc, specPath string, rec *httptest.ResponseRecorder) {
	t.Helper()
	spec, err := doc.Response(specPath, http.MethodPost, strconv.Itoa(rec.Code))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ETag"} {
		if spec.Header(name) && rec.Header().Get(name) == "" {
			t.Errorf("the document declares the %s header for %d; lift sent none", name, rec.Code)
		}
	}
	mediaTypes := spec.MediaTypes()
	if len(mediaTypes) == 0 {
		switch {
		case rec.Code == http.StatusNotModified:
			if rec.Body.Len() != 0 {
				t.Errorf("304 with a body: %s", rec.Body)
			}
			if rec.Header().Get("ETag") == "" {
				t.Errorf("304 without the ETag (RFC 9110 §15.4.5 requires the one a 200 would carry)")
			}
		case rec.Body.Len() > 0:
			// The document gives 401 no content; lift's own JSON error body is allowed
			// (nothing forbids it) but must say it is JSON.
			wantMediaType(t, rec, "application/json")
		}
		return
	}
	if len(mediaTypes) != 1 {
		t.Fatalf("the document allows %v; this test handles exactly one", mediaTypes)
	}
	wantMediaType(t, rec, mediaTypes[0])
	schema, _ := spec.Schema(mediaTypes[0])
	if err := doc.ValidateJSON(schema, rec.Body.Bytes()); err != nil {
		t.Errorf("body %s\n%v", rec.Body, err)
	}
}
