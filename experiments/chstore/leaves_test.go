package chstore

import (
	"strings"
	"testing"
)

func TestLeafFilter(t *testing.T) {
	t.Parallel()
	leaf := leafOf("user_id")
	for _, c := range []struct {
		chunk []uint32
		want  string
	}{
		{[]uint32{0, 1, 2, 3, 4, 5, 6, 7}, "bucket BETWEEN 0 AND 1"},
		{[]uint32{5, 6, 7, 8}, "bucket BETWEEN 1 AND 2 AND " + leaf + " BETWEEN 5 AND 8"},
		{[]uint32{1, 3, 9}, "bucket IN (0,2) AND " + leaf + " IN (1,3,9)"},
	} {
		if got := leafFilter(c.chunk); got != c.want {
			t.Errorf("leafFilter(%v) = %q, want %q", c.chunk, got, c.want)
		}
	}
}

// On a cluster the leaf query reads the shard's local tables, both of them.
func TestLocalLeafQuery(t *testing.T) {
	q := localLeafQuery(leafQuery([]metric{{}}, []uint32{1, 2}))
	if !strings.Contains(q, "FROM exposures_local\n") || !strings.Contains(q, "FROM events_local FINAL\n") ||
		strings.Contains(q, "FROM exposures\n") || strings.Contains(q, "FROM events FINAL") {
		t.Errorf("local leaf query reads Distributed tables:\n%s", q)
	}
}
