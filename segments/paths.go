package segments

import (
	"maps"
	"slices"
)

// Rule and feature errors name the offending element the way the client wrote it
// ("rule.sequence[1].where.country.$in"), in the notation of condition.ConditionError's
// Path, which they extend (condition.JoinPath, condition.IndexPath).

// sortedKeys makes error messages deterministic: the first problem in key order.
func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}
