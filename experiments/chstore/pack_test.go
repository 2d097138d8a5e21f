package chstore

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestPackRoundTrip(t *testing.T) {
	t.Parallel()
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
	// The last: one entry naming a variant where no name is stored.
	for _, bad := range []string{packed + "x", packed[:len(packed)-1] + "\xff", "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"} {
		if _, err := unpack(bad); err == nil {
			t.Errorf("unpack of %q: no error", bad)
		}
	}
	for n := 0; n < len(packed); n++ {
		if _, err := unpack(packed[:n]); err == nil && n > 0 {
			t.Fatalf("unpack of the first %d of %d bytes: no error", n, len(packed))
		}
	}
}

// TestPackIsCompact holds the format to its purpose (see pack.go): a conversion
// leaf's entries, whose sums are whole numbers, take a fraction of the 56 bytes
// their sums would as floats, and names are stored once.
func TestPackIsCompact(t *testing.T) {
	t.Parallel()
	var entries []entry
	for _, v := range []string{"control", "treatment"} {
		for _, seg := range []string{"new", "returning"} {
			for day := int64(0); day < 30; day++ {
				entries = append(entries, entry{combination{0, v, seg, 1793836800 + day*86400}, 3, 1, 1, 1, 0, 0, 0, 4, 12})
			}
		}
	}
	packed := pack(entries)
	if per := len(packed) / len(entries); per > 16 {
		t.Errorf("%d bytes per entry, want at most 16", per)
	}
	if got, err := unpack(packed); err != nil || !slices.Equal(got, entries) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestPackStampsRoundTrip(t *testing.T) {
	t.Parallel()
	leaves := make([]leaf, leafCount)
	leaves[0] = leaf{1, 0, 1}
	leaves[7] = leaf{152, 17, 1793836800123456789}
	leaves[leafCount-1] = leaf{math.MaxUint64, math.MaxUint64, math.MaxUint64}
	got, err := unpackStamps(packStamps(leaves))
	if err != nil || !slices.Equal(got, leaves) {
		t.Fatalf("unpackStamps(packStamps(l)): %v", err)
	}
	s := packStamps(leaves)
	if len(s) > leafCount*4 {
		t.Errorf("%d bytes of stamps for %d leaves of three versions, want at most 4 per leaf", len(s), leafCount)
	}
	for _, bad := range []string{"", s[:len(s)-1], s + "x", "\xff" + s[1:], "\x00" + strings.Repeat("\x00", 3*leafCount)} {
		if _, err := unpackStamps(bad); err == nil {
			t.Errorf("unpackStamps of %d bytes (of %d): no error", len(bad), len(s))
		}
	}
}
