package segments

// Shard maps a user id to one of n engine shards (n ≥ 1) with Lamping and Veach's
// jump consistent hash over FNV-1a 64: every engine process, the router and the
// rebuild from storage agree without coordination, and going from n to n+1 shards
// moves only about 1/(n+1) of the users (and their state). It returns 0 when n ≤ 1.
func Shard(userID string, n int) int {
	// FNV-1a inline: hash/fnv would allocate on this per-event path.
	key := uint64(14695981039346656037)
	for i := 0; i < len(userID); i++ {
		key ^= uint64(userID[i])
		key *= 1099511628211
	}
	b, j := int64(-1), int64(0)
	for j < int64(n) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(max(b, 0))
}
