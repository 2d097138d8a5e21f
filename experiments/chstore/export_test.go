package chstore

// SetChunk makes s compute at most n leaves per query, so that tests of a few
// thousand users exercise a computation in several chunks.
func SetChunk(s *Store, n int) { s.chunk = n }
