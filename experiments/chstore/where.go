package chstore

import (
	"strconv"
	"strings"

	"github.com/liftlab/lift/experiments"
)

// whereSQL translates a condition on event properties into a ClickHouse expression
// over the events' properties column, compact JSON text. 18.16 has no JSONExtract:
// visitParamExtractRaw gives a key's value as JSON text (” when absent), from which
// the value's type is read (a leading quote is a string; toFloat64OrNull tells a
// number), and visitParamExtractString/Float give the value. visitParam functions
// take the first occurrence of the key at any depth, so a key that also appears
// inside an earlier nested object is read from there (docs/analytics.md).
func whereSQL(w *experiments.Where) string {
	if w == nil {
		return "1"
	}
	switch w.Op {
	case "and", "or":
		parts := make([]string, len(w.Args))
		for i := range w.Args {
			parts[i] = whereSQL(&w.Args[i])
		}
		return "(" + strings.Join(parts, " "+strings.ToUpper(w.Op)+" ") + ")"
	case "not":
		return "NOT " + whereSQL(&w.Args[0])
	case "exists":
		present := "(visitParamExtractRaw(properties, " + quote(w.Prop) + ") NOT IN ('', 'null'))"
		if w.Exists {
			return present
		}
		return "NOT " + present
	case "ne":
		return "NOT " + compareSQL(w.Prop, "eq", w.Values[0])
	case "in", "nin":
		parts := make([]string, len(w.Values))
		for i, v := range w.Values {
			parts[i] = compareSQL(w.Prop, "eq", v)
		}
		in := "(" + strings.Join(parts, " OR ") + ")"
		if w.Op == "nin" {
			return "NOT " + in
		}
		return in
	}
	return compareSQL(w.Prop, w.Op, w.Values[0])
}

var sqlOps = map[string]string{"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

// compareSQL compares a property with a literal of the same type; other types give 0.
func compareSQL(prop, op string, v any) string {
	key := quote(prop)
	raw := "visitParamExtractRaw(properties, " + key + ")"
	switch x := v.(type) {
	case string:
		return "(substring(" + raw + ", 1, 1) = '\"' AND visitParamExtractString(properties, " + key + ") " + sqlOps[op] + " " + quote(x) + ")"
	case float64:
		return "(isNotNull(toFloat64OrNull(" + raw + ")) AND visitParamExtractFloat(properties, " + key + ") " + sqlOps[op] + " " + strconv.FormatFloat(x, 'g', -1, 64) + ")"
	case bool:
		return "(" + raw + " = " + quote(strconv.FormatBool(x)) + ")"
	}
	return "0"
}

// quote makes a ClickHouse string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
