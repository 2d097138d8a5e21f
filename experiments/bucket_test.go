package experiments_test

import (
	"math"
	"strconv"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/liftlab/lift/experiments"
)

// TestHashNonASCII pins JavaScript's behaviour, which hashes UTF-16 code units.
// Expected values come from FNV-1a over charCodeAt in node.
func TestHashNonASCII(t *testing.T) {
	tests := []struct {
		seed, value string
		version     int
		want        float64
	}{
		{"exp", "José", 2, 0.2831},
		{"exp", "José", 1, 0.117},
		{"種子", "ユーザー", 2, 0.9483},
		{"seed", "😀user", 2, 0.4915},
		{"seed", "😀user", 1, 0.166},
		{"", "\uFFFF\U0010FFFF", 2, 0.8925},
		{"exp-1", "user-1", 2, 0.5069},
	}
	for _, tt := range tests {
		got, ok := experiments.Hash(tt.seed, tt.value, tt.version)
		if !ok || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("Hash(%q, %q, %d) = %v, %v; want %v, true", tt.seed, tt.value, tt.version, got, ok, tt.want)
		}
	}
}

// refHash is a deliberately plain transcription of the algorithm over UTF-16 code
// units, to check the allocation-free Hash against.
func refHash(seed, value string, version int) (float64, bool) {
	fnv := func(s string) uint32 {
		h := uint32(0x811c9dc5)
		for _, u := range utf16.Encode([]rune(s)) {
			h ^= uint32(u)
			h *= 0x01000193
		}
		return h
	}
	switch version {
	case 1:
		return float64(fnv(value+seed)%1000) / 1000, true
	case 2:
		return float64(fnv(strconv.FormatUint(uint64(fnv(seed+value)), 10))%10000) / 10000, true
	}
	return 0, false
}

func FuzzHash(f *testing.F) {
	f.Add("", "a", 1)
	f.Add("seed", "a", 2)
	f.Add("()**(%$##$%#$#", "___)((*\":&", 2)
	f.Add("種子", "😀user", 2)
	f.Add("x", "\xff\xfe", 1)
	f.Add("x", "y", 3)
	f.Add("\xb3\xc1\xc4\xca0", "\xdc", 1) // "\xdc" + "\xb3" is one character
	f.Add("\xa9", "\xe2\x82", 2)
	f.Fuzz(func(t *testing.T, seed, value string, version int) {
		got, ok := experiments.Hash(seed, value, version)
		if ok != (version == 1 || version == 2) {
			t.Fatalf("Hash(_, _, %d) ok = %v", version, ok)
		}
		if !ok {
			return
		}
		if got < 0 || got >= 1 {
			t.Fatalf("Hash(%q, %q, %d) = %v, outside [0, 1)", seed, value, version, got)
		}
		if want, _ := refHash(seed, value, version); got != want {
			t.Fatalf("Hash(%q, %q, %d) = %v, reference gives %v", seed, value, version, got, want)
		}
	})
}

func TestHashDoesNotAllocate(t *testing.T) {
	ns := experiments.Namespace{ID: "checkout", Range: [2]float64{0, 0.5}}
	allocs := testing.AllocsPerRun(100, func() {
		experiments.Hash("experiment-seed", "user-1234567890", 2)
		experiments.Hash("experiment-seed", "usér-😀", 1)
		experiments.InNamespace("user-1234567890", ns)
	})
	if allocs != 0 {
		t.Errorf("Hash and InNamespace allocate %v times per run, want 0", allocs)
	}
}

// TestBucketDistribution checks that version 2 hashing splits users as configured:
// each arm within ±0.3 percentage points of its weight over 1,000,000 synthetic ids.
// The ids and seed are fixed, so the test is deterministic.
func TestBucketDistribution(t *testing.T) {
	const users = 1_000_000
	const tolerance = 0.003
	for _, weights := range [][]float64{{0.5, 0.5}, {0.2, 0.3, 0.5}} {
		ranges := experiments.BucketRanges(len(weights), 1, weights)
		counts := make([]int, len(weights))
		buf := []byte("user-")
		for i := range users {
			id := string(strconv.AppendInt(buf[:5], int64(i), 10))
			n, ok := experiments.Hash("exp-1", id, 2)
			if !ok {
				t.Fatal("Hash version 2 not ok")
			}
			v := experiments.ChooseVariation(n, ranges)
			if v < 0 {
				t.Fatalf("user %s with hash %v in no range of %v", id, n, ranges)
			}
			counts[v]++
		}
		for i, w := range weights {
			share := float64(counts[i]) / users
			if math.Abs(share-w) > tolerance {
				t.Errorf("weights %v: arm %d got %.4f of users, want %.4f ± %.3f", weights, i, share, w, tolerance)
			}
		}
	}
}

func TestBucketRanges(t *testing.T) {
	approx := cmpopts.EquateApprox(0, 1e-9)
	tests := []struct {
		name     string
		n        int
		coverage float64
		weights  []float64
		want     []experiments.Range
	}{
		{"coverage above 1", 2, 1.5, nil, []experiments.Range{{0, 0.5}, {0.5, 1}}},
		{"NaN coverage", 2, math.NaN(), nil, []experiments.Range{{0, 0}, {0.5, 0.5}}},
		{"wrong length", 3, 1, []float64{0.5, 0.5}, []experiments.Range{{0, 1.0 / 3}, {1.0 / 3, 2.0 / 3}, {2.0 / 3, 1}}},
		{"negative weight", 2, 1, []float64{1.5, -0.5}, []experiments.Range{{0, 0.5}, {0.5, 1}}},
		{"NaN weight", 2, 1, []float64{math.NaN(), 0.5}, []experiments.Range{{0, 0.5}, {0.5, 1}}},
		{"zero variations", 0, 1, nil, []experiments.Range{}},
		{"negative variations", -1, 1, nil, []experiments.Range{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := experiments.BucketRanges(tt.n, tt.coverage, tt.weights)
			if diff := cmp.Diff(tt.want, got, approx, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("BucketRanges(%d, %v, %v) mismatch (-want +got):\n%s", tt.n, tt.coverage, tt.weights, diff)
			}
		})
	}
}

// TestCoverageKeepsAssignments guards the reason coverage shrinks ranges from their
// start: raising coverage only adds users, it never moves one to another variation.
func TestCoverageKeepsAssignments(t *testing.T) {
	low := experiments.BucketRanges(3, 0.3, []float64{0.2, 0.3, 0.5})
	high := experiments.BucketRanges(3, 0.9, []float64{0.2, 0.3, 0.5})
	for i := range 10_000 {
		n, _ := experiments.Hash("exp-cov", "u"+strconv.Itoa(i), 2)
		if v := experiments.ChooseVariation(n, low); v >= 0 && experiments.ChooseVariation(n, high) != v {
			t.Fatalf("hash %v: variation %d at 30%% coverage, %d at 90%%", n, v, experiments.ChooseVariation(n, high))
		}
	}
}

func BenchmarkHash(b *testing.B) {
	for _, version := range []int{1, 2} {
		b.Run("v"+strconv.Itoa(version), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				experiments.Hash("checkout-redesign", "5f1c2a9e-7d34-4b8e-9a61-3c0d2b7e4f18", version)
			}
		})
	}
	b.Run("v2-non-ASCII", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			experiments.Hash("checkout-redesign", "usuário-çøñ-😀", 2)
		}
	})
}

func BenchmarkInNamespace(b *testing.B) {
	ns := experiments.Namespace{ID: "checkout", Range: [2]float64{0, 0.5}}
	b.ReportAllocs()
	for b.Loop() {
		experiments.InNamespace("5f1c2a9e-7d34-4b8e-9a61-3c0d2b7e4f18", ns)
	}
}
