package gbpayload

import (
	"encoding/json"

	"github.com/liftlab/lift/segments/condition"
)

// Strict rewrites a condition (decoded with json.Decoder.UseNumber) so that an SDK
// that still converts types — GrowthBook's JavaScript SDK up to at least 1.8.0
// compares "30" > 18 as true, "5" equal to 5 and 1 equal to true — evaluates it as
// lift does, with the strict types of GrowthBook's current condition spec
// (docs/sdk.md, "Types in conditions"). Strict SDKs evaluate the result the same as
// the original. The rewrite is exact for every attribute value:
//
//   - a literal string, number or boolean becomes {"$eq": literal} (strict equality);
//   - $gt, $gte, $lt, $lte, $regex, $regexi, $veq, $vgt, $vgte, $vlt and $vlte gain
//     "$type": the operand's type ("string" for regexes), so only an attribute of that
//     type compares; an operand that orders nothing (a boolean, null, an array) or
//     two operands of different types make the type one no value has;
//   - $vne becomes {"$not": {"$type": T, "$veq": v}}: true for any other type (left
//     alone beside a $not of its own or with an operand that is no version);
//   - {} as a value (no operators, so lift matches anything) becomes a condition every
//     value meets, and an $elemMatch of only $and, $or or $nor gains a field that
//     makes every SDK read it as a condition on the elements' fields, as lift does;
//   - operators that take conditions ($not, $elemMatch, $size, $all, $and, $or, $nor)
//     are rewritten inside.
//
// $ini, $nini and $alli are left as they are: their case folding has no strict
// spelling, and they differ only for numbers against strings.
func Strict(c any) any { return mapFields(c, strictValue) }

// noType is a $type no value has: getType answers string, number, boolean, null,
// array, object, undefined or unknown.
const noType = "none"

// strictValue rewrites what a field is tested with: a literal or an operator object.
func strictValue(v any) any {
	switch v.(type) {
	case string, json.Number, float64, bool:
		return map[string]any{"$eq": v}
	}
	m, ok := v.(map[string]any)
	if ok && len(m) == 0 {
		return always() // {} has no operators: lift matches every value
	}
	if !ok || !isOperatorObject(m) {
		return v // null, arrays and objects compare as JSON in every SDK
	}
	out := make(map[string]any, len(m)+1)
	want := "" // the type ordering and version operators need
	need := func(t string) {
		if want != "" && want != t {
			t = noType
		}
		want = t
	}
	for op, arg := range m {
		switch op {
		case "$gt", "$gte", "$lt", "$lte", "$veq", "$vgt", "$vgte", "$vlt", "$vlte":
			need(orderType(arg))
		case "$regex", "$regexi":
			need("string")
		case "$vne":
			// A version of another type is never equal: only an attribute of the
			// operand's type compares.
			if t := orderType(arg); t != noType && m["$not"] == nil {
				out["$not"] = map[string]any{"$type": t, "$veq": arg}
				continue
			}
		case "$not", "$size":
			arg = strictValue(arg)
		case "$elemMatch":
			am, ok := arg.(map[string]any)
			switch {
			case ok && isOperatorObject(am) && !condition.HasLogical(am):
				arg = strictValue(arg)
			case ok && isOperatorObject(am):
				// Only $and, $or or $nor: lift tests each element's fields, as a
				// condition; SDKs that decide by "every key starts with $" would take
				// them for operators on the element. A field no element has, tested
				// with a condition every value meets, makes it a condition for all.
				c := Strict(am).(map[string]any)
				c[""] = always()
				arg = c
			default:
				arg = Strict(arg)
			}
		case "$all":
			if list, ok := arg.([]any); ok {
				rewritten := make([]any, len(list))
				for i, e := range list {
					rewritten[i] = strictValue(e)
				}
				arg = rewritten
			}
		}
		out[op] = arg
	}
	if want != "" {
		if t, ok := m["$type"].(string); ok && t != want {
			want = noType
		}
		out["$type"] = want
	}
	return out
}

// always is a value condition every value meets, including a missing one.
func always() map[string]any { return map[string]any{"$not": map[string]any{"$type": noType}} }

// orderType is the type of attribute an ordering or version operand compares with.
func orderType(arg any) string {
	switch arg.(type) {
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	}
	return noType
}
