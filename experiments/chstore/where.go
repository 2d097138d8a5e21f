package chstore

import (
	"strconv"
	"strings"

	"github.com/liftlab/lift/experiments"
)

// whereSQL translates a condition on event properties into a ClickHouse expression
// over the events' top-level properties, kept in the parallel arrays prop_keys,
// prop_types, prop_strings and prop_numbers (migration 00046; ingest.PropertyColumns
// says what they hold). A property is read at indexOf(prop_keys, key), whose type is
// 'null' when the key is missing (index 0 reads the enum's 0), so that a condition
// sees exactly what the condition language sees in the decoded properties: only
// top-level keys, a missing key as null, types strict ("12" is no number), and $in
// on an array meaning any of its elements (the entries of type item_…).
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
		op := "!="
		if !w.Exists {
			op = "="
		}
		return "(" + propType(w.Prop) + " " + op + " 'null')"
	case "ne":
		return "NOT " + compareSQL(w.Prop, "eq", w.Values[0])
	case "in", "nin":
		in := inSQL(w.Prop, w.Values)
		if w.Op == "nin" {
			return "NOT " + in
		}
		return in
	}
	return compareSQL(w.Prop, w.Op, w.Values[0])
}

// propIndex is the position of a top-level key in the arrays, 0 when missing.
func propIndex(prop string) string { return "indexOf(prop_keys, " + quote(prop) + ")" }

func propType(prop string) string { return "prop_types[" + propIndex(prop) + "]" }

var sqlOps = map[string]string{"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

// compareSQL compares a top-level property with a literal of the same type; a
// property of another type, or none, compares false.
func compareSQL(prop, op string, v any) string {
	i := propIndex(prop)
	switch x := v.(type) {
	case string:
		s := "prop_strings[" + i + "]"
		lit := quote(x)
		if op != "eq" && needsUTF16Order(x) {
			s, lit = utf16Order(s), utf16Order(lit)
		}
		return "(" + propType(prop) + " = 'string' AND " + s + " " + sqlOps[op] + " " + lit + ")"
	case float64:
		return "(" + propType(prop) + " = 'number' AND prop_numbers[" + i + "] " + sqlOps[op] + " " + number(x) + ")"
	case bool:
		return "(" + propType(prop) + " = 'boolean' AND prop_numbers[" + i + "] = " + boolNumber(x) + ")"
	}
	return "0"
}

// inSQL holds when the property, or an element of it if it is an array, equals one
// of the values (of the same type). An array's elements are the entries of its key
// after the top-level ones.
func inSQL(prop string, values []any) string {
	var strs, nums, bools []string
	for _, v := range values {
		switch x := v.(type) {
		case string:
			strs = append(strs, quote(x))
		case float64:
			nums = append(nums, number(x))
		case bool:
			bools = append(bools, boolNumber(x))
		}
	}
	var member []string
	if len(strs) > 0 {
		member = append(member, "(t IN ('string', 'item_string') AND s IN ("+strings.Join(strs, ", ")+"))")
	}
	if len(nums) > 0 {
		member = append(member, "(t IN ('number', 'item_number') AND n IN ("+strings.Join(nums, ", ")+"))")
	}
	if len(bools) > 0 {
		member = append(member, "(t IN ('boolean', 'item_boolean') AND n IN ("+strings.Join(bools, ", ")+"))")
	}
	if len(member) == 0 {
		return "0"
	}
	return "arrayExists((k, t, s, n) -> k = " + quote(prop) + " AND (" + strings.Join(member, " OR ") +
		"), prop_keys, prop_types, prop_strings, prop_numbers)"
}

// number writes a float64 literal that ClickHouse reads back exactly (its SQL
// parser rounds correctly, unlike its toFloat64 of a string).
func number(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func boolNumber(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// needsUTF16Order tells whether ordering strings against s by their UTF-8 bytes, as
// ClickHouse does, could differ from ordering them by UTF-16 code units, as the
// condition language does (after JavaScript): only where one string has a
// character at or above U+E000 and the other one above U+FFFF at the first
// difference.
func needsUTF16Order(s string) bool {
	for _, r := range s {
		if r >= 0xE000 {
			return true
		}
	}
	return false
}

// utf16Order maps a UTF-8 string to bytes that order as its UTF-16 code units do:
// the lead bytes 0xEE and 0xEF (U+E000…U+FFFF; continuation bytes never take
// these values) become 0xF5 and 0xF6, which no UTF-8 byte uses, so that those
// characters sort after the four-byte ones (U+10000…, surrogate pairs in UTF-16).
func utf16Order(expr string) string {
	return `replaceAll(replaceAll(` + expr + `, '\xEE', '\xF5'), '\xEF', '\xF6')`
}

// quote makes a ClickHouse string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
