package dashboard

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// condRow is one line of the targeting rule builder: attribute, operator, value. The
// builder writes the same condition language as the API, restricted to a flat AND of
// such lines; anything richer is edited in raw JSON mode.
type condRow struct {
	Attr, Op, Value string
}

// builderOps are the operators the builder offers, in menu order.
var builderOps = []struct{ Op, Label string }{
	{"$eq", "equals"},
	{"$ne", "does not equal"},
	{"$in", "is one of"},
	{"$nin", "is none of"},
	{"$gt", ">"},
	{"$gte", "≥"},
	{"$lt", "<"},
	{"$lte", "≤"},
	{"$regex", "matches regex"},
	{"$exists", "exists"},
	{"$notexists", "does not exist"},
}

// opLabel names an operator as the builder's menu does.
func opLabel(op string) string {
	for _, o := range builderOps {
		if o.Op == op {
			return o.Label
		}
	}
	return op
}

// builderValue reads what a user typed: JSON numbers, booleans and quoted strings keep
// their type, anything else is text, so `US` and `"US"` both mean the string.
func builderValue(s string) any {
	s = strings.TrimSpace(s)
	var v any
	if err := json.Unmarshal([]byte(s), &v); err == nil {
		switch v.(type) {
		case float64, bool, string:
			return v
		}
	}
	return s
}

// conditionFromRows writes the rows as a condition; blank rows are ignored and no rows
// give nil (no targeting).
func conditionFromRows(rows []condRow) json.RawMessage {
	type clause struct {
		attr string
		op   map[string]any
	}
	var clauses []clause
	seen := map[string]bool{}
	dup := false
	for _, r := range rows {
		attr := strings.TrimSpace(r.Attr)
		if attr == "" {
			continue
		}
		var op map[string]any
		switch r.Op {
		case "$exists":
			op = map[string]any{"$exists": true}
		case "$notexists":
			op = map[string]any{"$exists": false}
		case "$in", "$nin":
			list := []any{}
			for _, item := range strings.Split(r.Value, ",") {
				if item = strings.TrimSpace(item); item != "" {
					list = append(list, builderValue(item))
				}
			}
			op = map[string]any{r.Op: list}
		case "$regex":
			op = map[string]any{"$regex": strings.TrimSpace(r.Value)}
		default:
			op = map[string]any{r.Op: builderValue(r.Value)}
		}
		dup = dup || seen[attr]
		seen[attr] = true
		clauses = append(clauses, clause{attr, op})
	}
	if len(clauses) == 0 {
		return nil
	}
	var doc any
	if dup {
		// The same attribute twice cannot share one JSON object key: spell out the AND.
		and := make([]any, len(clauses))
		for i, c := range clauses {
			and[i] = map[string]any{c.attr: c.op}
		}
		doc = map[string]any{"$and": and}
	} else {
		m := map[string]any{}
		for _, c := range clauses {
			m[c.attr] = c.op
		}
		doc = m
	}
	b, _ := json.Marshal(doc)
	return b
}

// rowsFromCondition reads a condition back into builder rows; ok is false when the
// condition uses something the builder cannot show.
func rowsFromCondition(raw json.RawMessage) (rows []condRow, ok bool) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, true
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, false
	}
	attrs := make([]string, 0, len(m))
	for a := range m {
		if strings.HasPrefix(a, "$") {
			return nil, false
		}
		attrs = append(attrs, a)
	}
	sort.Strings(attrs)
	for _, a := range attrs {
		ops, isMap := m[a].(map[string]any)
		if !isMap {
			if s, ok := scalarText(m[a]); ok {
				rows = append(rows, condRow{a, "$eq", s})
				continue
			}
			return nil, false
		}
		names := make([]string, 0, len(ops))
		for op := range ops {
			names = append(names, op)
		}
		sort.Strings(names)
		for _, op := range names {
			r, ok := rowFromOp(a, op, ops[op])
			if !ok {
				return nil, false
			}
			rows = append(rows, r)
		}
	}
	return rows, true
}

func rowFromOp(attr, op string, arg any) (condRow, bool) {
	switch op {
	case "$exists":
		b, ok := arg.(bool)
		if !ok {
			return condRow{}, false
		}
		if b {
			return condRow{attr, "$exists", ""}, true
		}
		return condRow{attr, "$notexists", ""}, true
	case "$in", "$nin":
		list, ok := arg.([]any)
		if !ok {
			return condRow{}, false
		}
		parts := make([]string, len(list))
		for i, v := range list {
			s, ok := scalarText(v)
			if !ok || strings.Contains(s, ",") {
				return condRow{}, false
			}
			parts[i] = s
		}
		return condRow{attr, op, strings.Join(parts, ", ")}, true
	case "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$regex":
		s, ok := scalarText(arg)
		return condRow{attr, op, s}, ok
	}
	return condRow{}, false
}

// scalarText shows a value so that builderValue reads it back the same: strings that
// would parse as another type are quoted.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		if _, isString := builderValue(x).(string); isString && strings.TrimSpace(x) == x && !strings.HasPrefix(x, `"`) {
			return x, true
		}
		b, _ := json.Marshal(x)
		return string(b), true
	case float64, bool:
		b, _ := json.Marshal(x)
		return string(b), true
	}
	return "", false
}

// prettyJSON indents a document for a textarea; invalid input comes back unchanged.
func prettyJSON(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}
