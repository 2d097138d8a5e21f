// Package typereg is the registry of custom event types: it compiles their JSON
// Schemas (santhosh-tekuri/jsonschema), refuses versions that would break existing
// consumers, and serves the current versions to the collector and the consumers.
package typereg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/liftlab/lift/internal/derrors"
)

// Schema is a compiled properties schema.
type Schema struct {
	s *jsonschema.Schema
}

// noLoader refuses every $ref outside the schema itself: schemas come from API
// clients, and must not make the server read files or fetch URLs.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external $ref %s is not allowed", url)
}

// Compile checks a properties schema: valid JSON Schema (draft 2020-12 unless it says
// otherwise) describing an object. It returns a *derrors.ValidationError on field
// "schema".
func Compile(raw json.RawMessage) (*Schema, error) {
	v := &derrors.ValidationError{}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		v.Add("schema", "must be JSON: %v", err)
		return nil, v
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		v.Add("schema", "must be a JSON Schema object")
		return nil, v
	}
	if t, has := obj["type"]; has && t != "object" {
		v.Add("schema.type", `must be "object": properties are a JSON object`)
		return nil, v
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	if err := c.AddResource("properties.json", doc); err != nil {
		v.Add("schema", "%v", err)
		return nil, v
	}
	s, err := c.Compile("properties.json")
	if err != nil {
		v.Add("schema", "invalid JSON Schema: %v", err)
		return nil, v
	}
	return &Schema{s: s}, nil
}

// ValidateProperties implements ingest.PropertiesValidator.
func (s *Schema) ValidateProperties(props json.RawMessage) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(props))
	if err != nil {
		return err
	}
	if err := s.s.Validate(inst); err != nil {
		var verr *jsonschema.ValidationError
		if errors.As(err, &verr) {
			return errors.New(firstLeaf(verr))
		}
		return err
	}
	return nil
}

// firstLeaf names the innermost failure, which says which property is wrong.
func firstLeaf(e *jsonschema.ValidationError) string {
	for len(e.Causes) > 0 {
		e = e.Causes[0]
	}
	loc := "/" + strings.Join(e.InstanceLocation, "/")
	return fmt.Sprintf("at %s: %s", loc, e.ErrorKind.LocalizedString(printer))
}

var printer = message.NewPrinter(language.English)

// Breaking lists why next would break consumers or producers of events valid under
// prev, by field path: a property removed or its type changed (consumers read it), a
// property newly required, an enum narrowed or additional properties forbidden
// (events that were valid would be refused). Nested object properties are compared
// too. Constraints it does not understand are not compared.
func Breaking(prev, next json.RawMessage) []derrors.FieldError {
	var a, b map[string]any
	if json.Unmarshal(prev, &a) != nil || json.Unmarshal(next, &b) != nil {
		return nil
	}
	var out []derrors.FieldError
	compareObject("schema", a, b, &out)
	return out
}

func compareObject(path string, a, b map[string]any, out *[]derrors.FieldError) {
	add := func(field, msg string) { *out = append(*out, derrors.FieldError{Field: field, Message: msg}) }
	if !typesWiden(a["type"], b["type"]) {
		add(path+".type", fmt.Sprintf("changed from %v to %v: existing events or readers would break", a["type"], b["type"]))
	}
	if ea, ok := a["enum"].([]any); ok {
		eb, _ := b["enum"].([]any)
		for _, v := range ea {
			if !slices.ContainsFunc(eb, func(w any) bool { return fmt.Sprint(w) == fmt.Sprint(v) }) {
				add(path+".enum", fmt.Sprintf("drops %v, which existing events may carry", v))
			}
		}
	}
	if b["additionalProperties"] == false && a["additionalProperties"] != false {
		add(path+".additionalProperties", "cannot be set to false: existing events may carry other properties")
	}
	reqA, reqB := stringSet(a["required"]), stringSet(b["required"])
	for name := range reqB {
		if !reqA[name] {
			add(path+".required", fmt.Sprintf("newly requires %q, which existing producers do not send", name))
		}
	}
	propsA, _ := a["properties"].(map[string]any)
	propsB, _ := b["properties"].(map[string]any)
	names := make([]string, 0, len(propsA))
	for name := range propsA {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		pa, _ := propsA[name].(map[string]any)
		pb, ok := propsB[name].(map[string]any)
		if !ok {
			add(path+".properties."+name, "removed: consumers reading it would break")
			continue
		}
		compareObject(path+".properties."+name, pa, pb, out)
	}
}

// typesWiden reports whether the type keyword b accepts everything a does.
func typesWiden(a, b any) bool {
	if b == nil {
		return true
	}
	if a == nil {
		return false
	}
	sa, sb := stringSet(a), stringSet(b)
	if sb["number"] {
		sb["integer"] = true
	}
	for t := range sa {
		if !sb[t] {
			return false
		}
	}
	return true
}

func stringSet(v any) map[string]bool {
	out := map[string]bool{}
	switch x := v.(type) {
	case string:
		out[x] = true
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				out[s] = true
			}
		}
	}
	return out
}
