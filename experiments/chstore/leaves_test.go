package chstore

import "testing"

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
