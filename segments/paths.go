package segments

import (
	"maps"
	"slices"
	"strconv"
)

// Rule and feature errors name the offending element the way the client wrote it
// ("rule.sequence[1].where.country.$in"), in the notation of condition.ConditionError's
// Path, which they extend.

func joinPath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

func indexPath(base string, i int) string {
	return base + "[" + strconv.Itoa(i) + "]"
}

// jsonKind names the JSON type of a decoded value for an error message.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	default:
		return "an object"
	}
}

// sortedKeys makes error messages deterministic: the first problem in key order.
func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}
