package chstore

import (
	"math"
	"slices"
	"testing"
)

func TestPackRoundTrip(t *testing.T) {
	entries := []entry{
		{combination{0, "control", "", 0}, 76, 3, 41.5, 900.25, 1, 1, 0.5, 166, 304},
		{combination{1, "v1 ✓", "returning", 1793836800}, 1, 0, 0, 0, math.Inf(1), math.Copysign(0, -1), math.SmallestNonzeroFloat64, 4, 4},
	}
	got, err := unpack(pack(entries))
	if err != nil || !slices.Equal(got, entries) {
		t.Fatalf("unpack(pack(e)) = %v, %v; want %v", got, err, entries)
	}
	if got, err := unpack(pack(nil)); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v, %v", got, err)
	}
	packed := pack(entries)
	for n := 1; n < len(packed); n++ {
		if _, err := unpack(packed[:n]); err == nil && n != len(pack(entries[:1])) {
			t.Fatalf("unpack of the first %d of %d bytes: no error", n, len(packed))
		}
	}
}

func TestPackStampsRoundTrip(t *testing.T) {
	leaves := make([]leaf, leafBuckets)
	leaves[0] = leaf{1, 0, 1}
	leaves[7] = leaf{152, 17, 1793836800123456789}
	leaves[leafBuckets-1] = leaf{math.MaxUint64, math.MaxUint64, math.MaxUint64}
	got, err := unpackStamps(packStamps(leaves))
	if err != nil || !slices.Equal(got, leaves) {
		t.Fatalf("unpackStamps(packStamps(l)): %v", err)
	}
	s := packStamps(leaves)
	for _, bad := range []string{"", s[:len(s)-1], s + "x"} {
		if _, err := unpackStamps(bad); err == nil {
			t.Errorf("unpackStamps of %d bytes (of %d): no error", len(bad), len(s))
		}
	}
}
