package openapi_test

import (
	"strings"
	"testing"

	"github.com/liftlab/lift/internal/openapi"
)

const testDoc = `
openapi: 3.1.0
paths:
  /things/{id}:
    post:
      responses:
        "200":
          description: ok
          headers:
            ETag: {schema: {type: string}}
          content:
            application/json:
              schema: {$ref: "#/components/responses-are-elsewhere/thing"}
        "204":
          $ref: "#/components/responses/empty"
components:
  responses:
    empty:
      description: nothing
  responses-are-elsewhere:
    thing:
      $ref: "#/components/schemas/thing"
  schemas:
    thing:
      type: object
      required: [id, kind]
      additionalProperties: false
      properties:
        id: {type: string, pattern: "^t-"}
        kind: {type: string, enum: [a, b]}
        count: {type: integer, minimum: 1}
        tags: {type: array, items: {type: string}}
        extra:
          type: object
          additionalProperties: {oneOf: [{type: boolean}, {type: string}]}
        shape: {$ref: "#/components/schemas/shape"}
    shape:
      oneOf:
        - {type: object, required: [r], properties: {r: {type: number}}}
        - {type: object, required: [w], properties: {w: {type: number}}}
    both:
      allOf:
        - {type: object, required: [a]}
        - {type: object, required: [b]}
    notA:
      not: {type: object, required: [a]}
    odd:
      type: string
      maxLength: 3
`

func load(t *testing.T) *openapi.Doc {
	t.Helper()
	d, err := openapi.Parse([]byte(testDoc))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestValidate(t *testing.T) {
	d := load(t)
	thing := map[string]any{"$ref": "#/components/schemas/thing"}
	ref := func(name string) any { return map[string]any{"$ref": "#/components/schemas/" + name} }
	tests := []struct {
		name   string
		schema any
		doc    string
		want   string // "" = valid, else a substring of the error
	}{
		{"valid minimal", thing, `{"id":"t-1","kind":"a"}`, ""},
		{"valid full", thing, `{"id":"t-1","kind":"b","count":3,"tags":["x"],"extra":{"p":true,"q":"s"},"shape":{"r":1.5}}`, ""},
		{"integer written as 2.0", thing, `{"id":"t-1","kind":"a","count":2.0}`, ""},
		{"missing required", thing, `{"id":"t-1"}`, `/: missing required property "kind"`},
		{"wrong enum value", thing, `{"id":"t-1","kind":"c"}`, `/kind: "c" is not one of ["a","b"]`},
		{"wrong type", thing, `{"id":1,"kind":"a"}`, `/id: is integer, want type string`},
		{"not an object", thing, `[1]`, `/: is array, want type object`},
		{"not an integer", thing, `{"id":"t-1","kind":"a","count":1.5}`, `/count: is number, want type integer`},
		{"below minimum", thing, `{"id":"t-1","kind":"a","count":0}`, `/count: 0 is less than the minimum 1`},
		{"pattern", thing, `{"id":"x-1","kind":"a"}`, `/id: "x-1" does not match pattern "^t-"`},
		{"additionalProperties false", thing, `{"id":"t-1","kind":"a","zzz":1}`, `property "zzz" is not allowed`},
		{"additionalProperties schema", thing, `{"id":"t-1","kind":"a","extra":{"p":1}}`, `/extra/p: matches none of the oneOf alternatives`},
		{"items", thing, `{"id":"t-1","kind":"a","tags":["x",2]}`, `/tags/1: is integer, want type string`},
		{"oneOf none", thing, `{"id":"t-1","kind":"a","shape":{}}`, `/shape: matches none of the oneOf alternatives`},
		{"oneOf two", thing, `{"id":"t-1","kind":"a","shape":{"r":1,"w":2}}`, `/shape: matches 2 oneOf alternatives, want exactly one`},
		{"allOf ok", ref("both"), `{"a":1,"b":2}`, ""},
		{"allOf one missing", ref("both"), `{"a":1}`, `missing required property "b"`},
		{"not ok", ref("notA"), `{"b":1}`, ""},
		{"not violated", ref("notA"), `{"a":1}`, `matches the schema under "not"`},
		{"false schema", false, `1`, `the false schema matches nothing`},
		{"unknown reference", ref("nope"), `1`, `no "nope"`},
		{"unsupported keyword is an error, not ignored", ref("odd"), `"ab"`, `unsupported schema keyword "maxLength"`},
		{"trailing data", thing, `{"id":"t-1","kind":"a"} {}`, `trailing data`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.ValidateJSON(tt.schema, []byte(tt.doc))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("want an error containing %q, got none", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("want an error containing %q, got %v", tt.want, err)
			}
		})
	}
}

func TestResponse(t *testing.T) {
	d := load(t)
	r, err := d.Response("/things/{id}", "POST", "200")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.MediaTypes(); len(got) != 1 || got[0] != "application/json" {
		t.Fatalf("media types %v", got)
	}
	if !r.Header("etag") {
		t.Fatal("ETag header not found")
	}
	s, ok := r.Schema("application/json")
	if !ok {
		t.Fatal("no schema")
	}
	if err := d.ValidateJSON(s, []byte(`{"id":"t-1","kind":"a"}`)); err != nil {
		t.Fatal(err)
	}
	if err := d.ValidateJSON(s, []byte(`{"id":"t-1"}`)); err == nil {
		t.Fatal("schema reached through two references accepted a document missing a field")
	}
	empty, err := d.Response("/things/{id}", "post", "204")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := empty.Schema("application/json"); ok || len(empty.MediaTypes()) != 0 {
		t.Fatal("a response without content has a schema")
	}
	for _, c := range [][3]string{{"/things/{id}", "post", "404"}, {"/things/{id}", "get", "200"}, {"/other", "post", "200"}} {
		if _, err := d.Response(c[0], c[1], c[2]); err == nil {
			t.Errorf("%v: want an error", c)
		}
	}
}
