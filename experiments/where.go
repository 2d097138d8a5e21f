package experiments

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/liftlab/lift/segments/condition"
)

// Where is a metric's condition on the properties of the events it counts
// (`"where"` on a goal or metric): the subset of the condition language that event
// stores can evaluate on top-level properties. A document is an implicit $and of its
// fields; a field holds a literal (equality) or an object of operators; $and, $or,
// $nor take arrays of documents and $not a document. Literals are strings, numbers
// and booleans. It means exactly what the condition language (condition.Condition)
// means on the event's decoded properties: types are strict (`{"price":{"$gt":10}}`
// is false for `"price":"12"`), a missing property is null (so $ne and $nin hold,
// and $exists means present and not null), $in and $nin on an array property test
// its elements, and names are top-level keys only (a key of a nested object of the
// same name is another property).
type Where struct {
	// Op is "and", "or", "not" (Args), or a comparison of Prop: "eq", "ne", "gt",
	// "gte", "lt", "lte", "in", "nin" (Values) or "exists" (Exists).
	Op     string
	Args   []Where
	Prop   string
	Values []any // string, float64 or bool
	Exists bool

	cond *condition.Condition // the same condition, as the condition language runs it
}

// WhereError is a problem at a path of a condition, such as "price.$gt".
type WhereError struct {
	Path, Message string
}

func (e *WhereError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// propertyName is what a condition may name: event stores look properties up by
// their JSON key text, so keys that JSON would escape are not allowed.
var propertyName = regexp.MustCompile(`^[A-Za-z0-9_$ -]+$`)

// ParseWhere parses a condition on event properties. It returns a *WhereError naming
// the offending path when the condition uses anything outside the subset Where
// describes; a nil or empty raw gives nil.
func ParseWhere(raw json.RawMessage) (*Where, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, &WhereError{Message: "not valid JSON: " + err.Error()}
	}
	w, err := parseDocument(doc, "")
	if err != nil {
		return nil, err
	}
	if w.cond, err = condition.ParseConditionJSON(raw); err != nil {
		return nil, &WhereError{Message: err.Error()}
	}
	return &w, nil
}

func parseDocument(doc any, path string) (Where, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		return Where{}, &WhereError{Path: path, Message: "must be an object of property conditions"}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the same condition always gives the same Where
	and := Where{Op: "and"}
	for _, k := range keys {
		p := joinWherePath(path, k)
		switch k {
		case "$and", "$or", "$nor":
			list, ok := m[k].([]any)
			if !ok || len(list) == 0 {
				return Where{}, &WhereError{Path: p, Message: "must be a non-empty array of conditions"}
			}
			group := Where{Op: "and"}
			if k != "$and" {
				group.Op = "or"
			}
			for i, d := range list {
				w, err := parseDocument(d, fmt.Sprintf("%s[%d]", p, i))
				if err != nil {
					return Where{}, err
				}
				group.Args = append(group.Args, w)
			}
			if k == "$nor" {
				group = Where{Op: "not", Args: []Where{group}}
			}
			and.Args = append(and.Args, group)
		case "$not":
			w, err := parseDocument(m[k], p)
			if err != nil {
				return Where{}, err
			}
			and.Args = append(and.Args, Where{Op: "not", Args: []Where{w}})
		default:
			if strings.HasPrefix(k, "$") || !propertyName.MatchString(k) {
				return Where{}, &WhereError{Path: p, Message: "must be a top-level property name (letters, digits, _ - $ and spaces; no dots) or $and, $or, $nor, $not"}
			}
			w, err := parseField(k, m[k], p)
			if err != nil {
				return Where{}, err
			}
			and.Args = append(and.Args, w)
		}
	}
	if len(and.Args) == 1 {
		return and.Args[0], nil
	}
	return and, nil
}

func parseField(prop string, v any, path string) (Where, error) {
	ops, ok := v.(map[string]any)
	if !ok {
		lit, err := literal(v, path)
		if err != nil {
			return Where{}, err
		}
		return Where{Op: "eq", Prop: prop, Values: []any{lit}}, nil
	}
	names := make([]string, 0, len(ops))
	for k := range ops {
		names = append(names, k)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return Where{}, &WhereError{Path: path, Message: "needs at least one operator"}
	}
	and := Where{Op: "and"}
	for _, name := range names {
		p := path + "." + name
		arg := ops[name]
		switch name {
		case "$eq", "$ne", "$gt", "$gte", "$lt", "$lte":
			lit, err := literal(arg, p)
			if err != nil {
				return Where{}, err
			}
			if _, isBool := lit.(bool); isBool && name != "$eq" && name != "$ne" {
				return Where{}, &WhereError{Path: p, Message: "compares strings or numbers, not booleans"}
			}
			and.Args = append(and.Args, Where{Op: name[1:], Prop: prop, Values: []any{lit}})
		case "$in", "$nin":
			list, ok := arg.([]any)
			if !ok || len(list) == 0 {
				return Where{}, &WhereError{Path: p, Message: "must be a non-empty array of strings, numbers or booleans"}
			}
			w := Where{Op: name[1:], Prop: prop}
			for i, x := range list {
				lit, err := literal(x, fmt.Sprintf("%s[%d]", p, i))
				if err != nil {
					return Where{}, err
				}
				w.Values = append(w.Values, lit)
			}
			and.Args = append(and.Args, w)
		case "$exists":
			b, ok := arg.(bool)
			if !ok {
				return Where{}, &WhereError{Path: p, Message: "must be true or false"}
			}
			and.Args = append(and.Args, Where{Op: "exists", Prop: prop, Exists: b})
		case "$not":
			w, err := parseField(prop, arg, p)
			if err != nil {
				return Where{}, err
			}
			and.Args = append(and.Args, Where{Op: "not", Args: []Where{w}})
		default:
			return Where{}, &WhereError{Path: p, Message: "unsupported operator in a metric condition (use $eq $ne $gt $gte $lt $lte $in $nin $exists $not)"}
		}
	}
	if len(and.Args) == 1 {
		return and.Args[0], nil
	}
	return and, nil
}

func literal(v any, path string) (any, error) {
	switch x := v.(type) {
	case string, bool:
		return x, nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, &WhereError{Path: path, Message: "number out of range"}
		}
		return f, nil
	}
	return nil, &WhereError{Path: path, Message: "must be a string, number or boolean"}
}

func joinWherePath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

// Match evaluates the condition on decoded JSON properties (numbers as float64), as
// the condition language does, which is what event stores implement. It returns
// false for a Where that ParseWhere did not make.
func (w *Where) Match(props map[string]any) bool {
	return w.cond != nil && w.cond.Match(props, nil)
}
