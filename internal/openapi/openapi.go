// Package openapi reads an OpenAPI 3.1 document and validates JSON values against the
// schemas in it, for tests. The validator covers the JSON Schema subset that the
// documents lift tests against use (type, required, properties, additionalProperties,
// enum, const, allOf, anyOf, oneOf, not, items, pattern, minimum, $ref to a local
// pointer) and fails on any other assertion keyword rather than ignoring it.
package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Doc is a parsed OpenAPI document: plain maps, slices, strings, bools, nil and
// float64 numbers, as encoding/json would decode the same document.
type Doc struct {
	Root map[string]any
}

// Load reads and parses the document at path.
func Load(path string) (*Doc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse parses a YAML or JSON document.
func Parse(data []byte) (*Doc, error) {
	var raw any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	v, err := normalize(raw)
	if err != nil {
		return nil, err
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("openapi: document is not an object")
	}
	return &Doc{Root: root}, nil
}

// normalize turns YAML's decoded values into JSON's: every number a float64, every
// map keyed by string.
func normalize(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("openapi: non-string key %v", k)
			}
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[ks] = n
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	default:
		return x, nil
	}
}

// Response is one response of one operation.
type Response struct {
	// Node is the response object, $ref resolved.
	Node map[string]any
}

// Response finds the response the document defines for path (as written in the
// document, e.g. "/flags/{key}"), method and status (e.g. "200").
func (d *Doc) Response(path, method, status string) (*Response, error) {
	paths, _ := d.Root["paths"].(map[string]any)
	item, ok := paths[path].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("openapi: no path %q", path)
	}
	op, ok := item[strings.ToLower(method)].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("openapi: no %s %s", method, path)
	}
	responses, _ := op["responses"].(map[string]any)
	resp, ok := responses[status]
	if !ok {
		return nil, fmt.Errorf("openapi: %s %s defines no %s response", method, path, status)
	}
	node, err := d.deref(resp)
	if err != nil {
		return nil, err
	}
	m, ok := node.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("openapi: %s %s response %s is not an object", method, path, status)
	}
	return &Response{Node: m}, nil
}

// MediaTypes lists the media types the response has content for, sorted.
func (r *Response) MediaTypes() []string {
	content, _ := r.Node["content"].(map[string]any)
	out := make([]string, 0, len(content))
	for mt := range content {
		out = append(out, mt)
	}
	sort.Strings(out)
	return out
}

// Schema returns the schema of the response's content of mediaType; ok is false when
// the response defines no such content.
func (r *Response) Schema(mediaType string) (schema any, ok bool) {
	content, _ := r.Node["content"].(map[string]any)
	mt, ok := content[mediaType].(map[string]any)
	if !ok {
		return nil, false
	}
	schema, ok = mt["schema"]
	return schema, ok
}

// Header reports whether the response declares the header (case-insensitively).
func (r *Response) Header(name string) bool {
	headers, _ := r.Node["headers"].(map[string]any)
	for h := range headers {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// Pointer resolves a local reference such as "#/components/schemas/key".
func (d *Doc) Pointer(ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, fmt.Errorf("openapi: only local references are supported, got %q", ref)
	}
	var cur any = d.Root
	if p == "" {
		return cur, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("openapi: bad reference %q", ref)
	}
	for _, tok := range strings.Split(p[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("openapi: reference %q: no %q", ref, tok)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("openapi: reference %q: bad index %q", ref, tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("openapi: reference %q: cannot descend into %T", ref, cur)
		}
	}
	return cur, nil
}

// deref follows $ref chains of non-schema objects (responses, parameters).
func (d *Doc) deref(node any) (any, error) {
	for range 32 {
		m, ok := node.(map[string]any)
		if !ok {
			return node, nil
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return node, nil
		}
		next, err := d.Pointer(ref)
		if err != nil {
			return nil, err
		}
		node = next
	}
	return nil, errors.New("openapi: $ref chain too long")
}

// ValidationError lists every way a value fails a schema, each prefixed with the JSON
// pointer of the offending value.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "does not match the schema:\n  " + strings.Join(e.Problems, "\n  ")
}

// ValidateJSON decodes data (one JSON value) and validates it against schema.
func (d *Doc) ValidateJSON(schema any, data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if dec.More() {
		return errors.New("not JSON: trailing data after the value")
	}
	return d.Validate(schema, v)
}

// Validate checks v (as decoded by encoding/json, with or without UseNumber) against
// schema, a schema node of the document (a $ref, an inline schema or a boolean).
func (d *Doc) Validate(schema, v any) error {
	var problems []string
	d.check(schema, v, "", 0, &problems)
	if len(problems) > 0 {
		return &ValidationError{Problems: problems}
	}
	return nil
}

// annotations are keywords that assert nothing (format is an annotation in 2020-12).
var annotations = map[string]bool{
	"description": true, "title": true, "example": true, "examples": true, "default": true,
	"format": true, "deprecated": true, "readOnly": true, "writeOnly": true, "$comment": true,
	"contentMediaType": true, "contentEncoding": true, "contentSchema": true,
}

// applicators are the keywords check implements.
var applicators = map[string]bool{
	"$ref": true, "type": true, "enum": true, "const": true, "required": true,
	"properties": true, "additionalProperties": true, "items": true, "pattern": true,
	"minimum": true, "allOf": true, "anyOf": true, "oneOf": true, "not": true,
}

const maxDepth = 64

func (d *Doc) check(schema, v any, at string, depth int, problems *[]string) {
	fail := func(format string, args ...any) {
		loc := at
		if loc == "" {
			loc = "/"
		}
		*problems = append(*problems, loc+": "+fmt.Sprintf(format, args...))
	}
	if depth > maxDepth {
		fail("schema nesting deeper than %d (a $ref cycle?)", maxDepth)
		return
	}
	switch s := schema.(type) {
	case bool:
		if !s {
			fail("the false schema matches nothing")
		}
		return
	case map[string]any:
		for k := range s {
			if !applicators[k] && !annotations[k] {
				fail("unsupported schema keyword %q", k)
			}
		}
		d.checkObject(s, v, at, depth, problems, fail)
	default:
		fail("schema is a %T, not an object or boolean", schema)
	}
}

func (d *Doc) checkObject(s map[string]any, v any, at string, depth int, problems *[]string, fail func(string, ...any)) {
	if ref, ok := s["$ref"].(string); ok {
		target, err := d.Pointer(ref)
		if err != nil {
			fail("%v", err)
		} else {
			d.check(target, v, at, depth+1, problems)
		}
	}
	if t, ok := s["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, e := range t {
				if es, ok := e.(string); ok {
					types = append(types, es)
				}
			}
		}
		matched := false
		for _, typ := range types {
			if hasType(v, typ) {
				matched = true
			}
		}
		if !matched {
			fail("is %s, want type %s", typeName(v), strings.Join(types, " or "))
			return // the remaining keywords would only repeat the type mismatch
		}
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if equal(e, v) {
				found = true
				break
			}
		}
		if !found {
			fail("%s is not one of %s", show(v), show(enum))
		}
	}
	if c, ok := s["const"]; ok && !equal(c, v) {
		fail("%s is not %s", show(v), show(c))
	}
	if obj, ok := v.(map[string]any); ok {
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if name, _ := r.(string); name != "" {
					if _, present := obj[name]; !present {
						fail("missing required property %q", name)
					}
				}
			}
		}
		props, _ := s["properties"].(map[string]any)
		for _, name := range sortedKeys(obj) {
			sub := at + "/" + strings.ReplaceAll(strings.ReplaceAll(name, "~", "~0"), "/", "~1")
			if ps, declared := props[name]; declared {
				d.check(ps, obj[name], sub, depth+1, problems)
				continue
			}
			if ap, ok := s["additionalProperties"]; ok {
				if b, isBool := ap.(bool); isBool && !b {
					fail("property %q is not allowed", name)
				} else {
					d.check(ap, obj[name], sub, depth+1, problems)
				}
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"]; ok {
			for i, e := range arr {
				d.check(items, e, at+"/"+strconv.Itoa(i), depth+1, problems)
			}
		}
	}
	if str, ok := v.(string); ok {
		if p, ok := s["pattern"].(string); ok {
			re, err := regexp.Compile(p)
			switch {
			case err != nil:
				fail("pattern %q does not compile: %v", p, err)
			case !re.MatchString(str):
				fail("%s does not match pattern %q", show(v), p)
			}
		}
	}
	if n, ok := number(v); ok {
		if m, ok := s["minimum"]; ok {
			if min, ok := number(m); ok && n.Cmp(min) < 0 {
				fail("%s is less than the minimum %s", show(v), show(m))
			}
		}
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			d.check(sub, v, at, depth+1, problems)
		}
	}
	if anyOf, ok := s["anyOf"].([]any); ok {
		if matched, why := d.matching(anyOf, v, at, depth); len(matched) == 0 {
			fail("matches none of the anyOf alternatives:%s", why)
		}
	}
	if one, ok := s["oneOf"].([]any); ok {
		matched, why := d.matching(one, v, at, depth)
		switch len(matched) {
		case 1:
		case 0:
			fail("matches none of the oneOf alternatives:%s", why)
		default:
			fail("matches %d oneOf alternatives, want exactly one: %s", len(matched), strings.Join(matched, ", "))
		}
	}
	if not, ok := s["not"]; ok {
		var sub []string
		d.check(not, v, at, depth+1, &sub)
		if len(sub) == 0 {
			fail("matches the schema under \"not\"")
		}
	}
}

// matching returns the alternatives v matches (named by index and $ref) and, for the
// others, why they did not match.
func (d *Doc) matching(alts []any, v any, at string, depth int) (matched []string, why string) {
	var b strings.Builder
	for i, alt := range alts {
		name := "#" + strconv.Itoa(i)
		if m, ok := alt.(map[string]any); ok {
			if ref, ok := m["$ref"].(string); ok {
				name += " " + ref
			}
		}
		var sub []string
		d.check(alt, v, at, depth+1, &sub)
		if len(sub) == 0 {
			matched = append(matched, name)
			continue
		}
		fmt.Fprintf(&b, "\n    [%s] %s", name, strings.Join(sub, "; "))
	}
	return matched, b.String()
}

func hasType(v any, typ string) bool {
	switch typ {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := number(v)
		return ok
	case "integer":
		n, ok := number(v)
		return ok && n.IsInt()
	}
	return false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	}
	if n, ok := number(v); ok {
		if n.IsInt() {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// number returns v exactly as a rational, for json.Number and float64 alike.
func number(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case json.Number:
		r, ok := new(big.Rat).SetString(string(x))
		return r, ok
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(x) == nil {
			return nil, false
		}
		return r, true
	}
	return nil, false
}

// equal compares JSON values, numbers by value.
func equal(a, b any) bool {
	if na, ok := number(a); ok {
		nb, ok := number(b)
		return ok && na.Cmp(nb) == 0
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !equal(e, f) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 120 {
		return string(b[:117]) + "..."
	}
	return string(b)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
