package experiments

import "testing"

// The decision path's precomputed seed must hash exactly like Hash.
func TestSeededV2MatchesHash(t *testing.T) {
	for _, seed := range []string{"", "exp-1", "héro", "日本", "🙂seed"} {
		s := newSeededV2(seed)
		for _, id := range []string{"", "u1", "user-123456", "ünïcode", "🙂", "a\u00e9b"} {
			want, _ := Hash(seed, id, 2)
			if got := s.hash(id); got != want {
				t.Errorf("seed %q id %q: %v, Hash gives %v", seed, id, got, want)
			}
		}
	}
}
