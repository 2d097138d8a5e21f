// Package finite writes numbers that may be ±Inf or NaN as JSON, which has no
// spelling for them. Results and reports are computed from stored data that lift does
// not trust to be in range (a sum of large values overflows to +Inf), and
// encoding/json refuses a whole answer for one such number. Encoders of results
// convert their float64 fields to Float, which writes them as null.
//
// It imports only the standard library, so that domain packages may use it.
package finite

import (
	"encoding/json"
	"math"
)

// Float is a float64 that encodes as JSON null when it is ±Inf or NaN, and exactly
// as encoding/json encodes a float64 otherwise.
type Float float64

// MarshalJSON never fails.
func (f Float) MarshalJSON() ([]byte, error) {
	if !All(float64(f)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

// Ptr converts a pointer; nil stays nil.
func Ptr(p *float64) *Float { return (*Float)(p) }

// Slice converts a slice; nil stays nil.
func Slice(xs []float64) []Float {
	if xs == nil {
		return nil
	}
	out := make([]Float, len(xs))
	for i, x := range xs {
		out[i] = Float(x)
	}
	return out
}

// All reports whether every x is a finite number.
func All(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
