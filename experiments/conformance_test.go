package experiments_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/conformance"
)

// bucketingCases holds the bucketing groups of GrowthBook's cases.json; each case is
// a JSON array decoded element by element with decodeCase.
type bucketingCases struct {
	Hash            [][]json.RawMessage `json:"hash"`
	GetBucketRange  [][]json.RawMessage `json:"getBucketRange"`
	ChooseVariation [][]json.RawMessage `json:"chooseVariation"`
	InNamespace     [][]json.RawMessage `json:"inNamespace"`
	GetEqualWeights [][]json.RawMessage `json:"getEqualWeights"`
}

func loadBucketingCases(t *testing.T) bucketingCases {
	t.Helper()
	var c bucketingCases
	conformance.Load(t, "growthbook/cases.json", &c)
	for group, n := range map[string]int{
		"hash": len(c.Hash), "getBucketRange": len(c.GetBucketRange),
		"chooseVariation": len(c.ChooseVariation), "inNamespace": len(c.InNamespace),
		"getEqualWeights": len(c.GetEqualWeights),
	} {
		if n == 0 {
			t.Fatalf("cases.json has no %s cases", group)
		}
	}
	return c
}

// decodeCase unmarshals the elements of one case into dst, in order.
func decodeCase(t *testing.T, raw []json.RawMessage, dst ...any) {
	t.Helper()
	if len(raw) != len(dst) {
		t.Fatalf("case %s: want %d elements, got %d", raw, len(dst), len(raw))
	}
	for i, d := range dst {
		if err := json.Unmarshal(raw[i], d); err != nil {
			t.Fatalf("case %s: element %d: %v", raw, i, err)
		}
	}
}

var approx = cmpopts.EquateApprox(0, 1e-6)

func TestBucketingConformance(t *testing.T) {
	cases := loadBucketingCases(t)

	t.Run("hash", func(t *testing.T) {
		for _, raw := range cases.Hash {
			var seed, value string
			var version int
			var want *float64 // null: unsupported version
			decodeCase(t, raw, &seed, &value, &version, &want)
			t.Run(fmt.Sprintf("%q,%q,v%d", seed, value, version), func(t *testing.T) {
				got, ok := experiments.Hash(seed, value, version)
				if want == nil {
					if ok {
						t.Errorf("Hash = %v, true; want ok = false", got)
					}
					return
				}
				if !ok || !cmp.Equal(got, *want, approx) {
					t.Errorf("Hash = %v, %v; want %v, true", got, ok, *want)
				}
			})
		}
	})

	t.Run("getBucketRange", func(t *testing.T) {
		for _, raw := range cases.GetBucketRange {
			var name string
			var args []json.RawMessage
			var want []experiments.Range
			decodeCase(t, raw, &name, &args, &want)
			var n int
			var coverage float64
			var weights []float64
			decodeCase(t, args, &n, &coverage, &weights)
			t.Run(name, func(t *testing.T) {
				got := experiments.BucketRanges(n, coverage, weights)
				if diff := cmp.Diff(want, got, approx, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("BucketRanges(%d, %v, %v) mismatch (-want +got):\n%s", n, coverage, weights, diff)
				}
			})
		}
	})

	t.Run("chooseVariation", func(t *testing.T) {
		for _, raw := range cases.ChooseVariation {
			var name string
			var n float64
			var ranges []experiments.Range
			var want int
			decodeCase(t, raw, &name, &n, &ranges, &want)
			t.Run(name, func(t *testing.T) {
				if got := experiments.ChooseVariation(n, ranges); got != want {
					t.Errorf("ChooseVariation(%v, %v) = %d, want %d", n, ranges, got, want)
				}
			})
		}
	})

	t.Run("inNamespace", func(t *testing.T) {
		for _, raw := range cases.InNamespace {
			var name, id string
			var nsRaw []json.RawMessage
			var want bool
			decodeCase(t, raw, &name, &id, &nsRaw, &want)
			var ns experiments.Namespace
			decodeCase(t, nsRaw, &ns.ID, &ns.Range[0], &ns.Range[1])
			t.Run(name, func(t *testing.T) {
				if got := experiments.InNamespace(id, ns); got != want {
					t.Errorf("InNamespace(%q, %+v) = %v, want %v", id, ns, got, want)
				}
			})
		}
	})

	t.Run("getEqualWeights", func(t *testing.T) {
		for _, raw := range cases.GetEqualWeights {
			var n int
			var want []float64
			decodeCase(t, raw, &n, &want)
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				got := experiments.EqualWeights(n)
				if diff := cmp.Diff(want, got, approx, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("EqualWeights(%d) mismatch (-want +got):\n%s", n, diff)
				}
			})
		}
	})
}
