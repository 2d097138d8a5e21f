package segments_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/liftlab/lift/segments"
)

func TestShardBalance(t *testing.T) {
	const users, shards = 200000, 16
	counts := make([]int, shards)
	for i := range users {
		counts[segments.Shard(fmt.Sprintf("user-%d", i), shards)]++
	}
	// Binomial sd of a shard's count is sqrt(12500·15/16) ≈ 108; 5 sd is 4.3%.
	mean := float64(users) / shards
	for s, c := range counts {
		if math.Abs(float64(c)-mean) > 0.05*mean {
			t.Errorf("shard %d has %d users, want %.0f ± 5%%", s, c, mean)
		}
	}
}

func TestShardIsConsistent(t *testing.T) {
	const users = 100000
	moved := 0
	for i := range users {
		id := fmt.Sprintf("u%x", i)
		from, to := segments.Shard(id, 10), segments.Shard(id, 11)
		if from != to {
			moved++
			if to != 10 {
				t.Fatalf("%s moved from shard %d to %d, want only moves to the new shard 10", id, from, to)
			}
		}
	}
	// Expect 1/11 of the users to move; ±10% of that is far beyond sampling noise.
	if want := users / 11.0; math.Abs(float64(moved)-want) > 0.1*want {
		t.Errorf("%d users moved, want about %.0f", moved, want)
	}
	for _, n := range []int{-1, 0, 1} {
		if s := segments.Shard("x", n); s != 0 {
			t.Errorf("Shard(x, %d) = %d, want 0", n, s)
		}
	}
}
