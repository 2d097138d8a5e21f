package experiments

import (
	"math"
	"unicode/utf8"
)

// Bucketing follows GrowthBook's published algorithm so that lift and the GrowthBook
// SDKs put a user in the same variation given the same seed, weights and coverage.

const (
	fnvOffset32 = 0x811c9dc5
	fnvPrime32  = 0x01000193
)

// fnv1a32 continues a 32-bit FNV-1a hash over s taken as UTF-16 code units, which is
// what the JavaScript SDK hashes (charCodeAt), so non-ASCII ids land in the same bucket.
// Invalid UTF-8 bytes count as U+FFFD, as they would after decoding JSON.
func fnv1a32(h uint32, s string) uint32 {
	// ASCII, the usual case, takes a tight loop; the first other byte hands the rest
	// to the full decoder.
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return fnv1a32Concat(h, s[i:], "")
		}
		h = (h ^ uint32(c)) * fnvPrime32
	}
	return h
}

// fnv1a32Concat is fnv1a32 over a+b without building a+b.
func fnv1a32Concat(h uint32, a, b string) uint32 {
	for i := 0; i < len(a); {
		c := a[i]
		if c < utf8.RuneSelf {
			h = (h ^ uint32(c)) * fnvPrime32
			i++
			continue
		}
		if len(b) > 0 && !utf8.FullRuneInString(a[i:]) {
			// Only invalid UTF-8 gets here: a ends part-way into a character, which the
			// start of b may complete, so decode across the boundary as a+b would be.
			var buf [2 * utf8.UTFMax]byte
			n := copy(buf[:], a[i:])
			m := copy(buf[n:], b)
			r, size := utf8.DecodeRune(buf[:n+m])
			h = fnv1a32Rune(h, r)
			if size > n {
				return fnv1a32Concat(h, b[size-n:], "")
			}
			i += size
			continue
		}
		r, size := utf8.DecodeRuneInString(a[i:])
		h = fnv1a32Rune(h, r)
		i += size
	}
	if b == "" {
		return h
	}
	return fnv1a32Concat(h, b, "")
}

// fnv1a32Rune hashes r as one UTF-16 code unit, or two (a surrogate pair) above U+FFFF.
func fnv1a32Rune(h uint32, r rune) uint32 {
	if r >= 0x10000 {
		r -= 0x10000
		h = (h ^ uint32(0xD800+(r>>10))) * fnvPrime32
		return (h ^ uint32(0xDC00+(r&0x3FF))) * fnvPrime32
	}
	return (h ^ uint32(r)) * fnvPrime32
}

// fnv1a32ASCII is fnv1a32 for bytes known to be ASCII, such as decimal digits.
func fnv1a32ASCII(h uint32, b []byte) uint32 {
	for _, c := range b {
		h = (h ^ uint32(c)) * fnvPrime32
	}
	return h
}

// Hash maps a user's value into [0, 1) for an experiment seed with GrowthBook's hash
// version 1 (fnv1a32(value+seed) % 1000 / 1000) or 2 (fnv1a32 of the decimal string of
// fnv1a32(seed+value), % 10000 / 10000). ok is false for any other version. Hash does
// not allocate.
func Hash(seed, value string, version int) (n float64, ok bool) {
	switch version {
	case 1:
		h := fnv1a32Concat(fnvOffset32, value, seed)
		return float64(h%1000) / 1000, true
	case 2:
		return hashV2(fnv1a32Concat(fnvOffset32, seed, value)), true
	}
	return 0, false
}

// hashV2 finishes a version 2 hash from the FNV-1a state over seed+value.
func hashV2(h uint32) float64 {
	// Hash the decimal digits of h, most significant first, without formatting a
	// string: this runs for every experiment in every decision. Two digits per
	// division, as strconv does.
	var digits [10]byte // math.MaxUint32 has 10 digits
	i := len(digits)
	for h >= 100 {
		q := h / 100
		pair := (h - q*100) * 2
		i -= 2
		digits[i], digits[i+1] = digitPairs[pair], digitPairs[pair+1]
		h = q
	}
	if h >= 10 {
		i -= 2
		digits[i], digits[i+1] = digitPairs[h*2], digitPairs[h*2+1]
	} else {
		i--
		digits[i] = byte('0' + h)
	}
	return float64(fnv1a32ASCII(fnvOffset32, digits[i:])%10000) / 10000
}

const digitPairs = "00010203040506070809" + "10111213141516171819" + "20212223242526272829" +
	"30313233343536373839" + "40414243444546474849" + "50515253545556575859" +
	"60616263646566676869" + "70717273747576777879" + "80818283848586878889" + "90919293949596979899"

// seededV2 is Hash(seed, ·, 2) with the seed's share of the work done once: the
// decision path hashes the same experiment seed for every user. The seed must be valid
// UTF-8 (every string decoded from JSON is), so hashing it apart from the value gives
// the same result as hashing the two together.
type seededV2 uint32

func newSeededV2(seed string) seededV2 { return seededV2(fnv1a32(fnvOffset32, seed)) }

func (s seededV2) hash(value string) float64 { return hashV2(fnv1a32(uint32(s), value)) }

// Range is a half-open interval [start, end) of hash values that buckets into one
// variation.
type Range [2]float64

// EqualWeights returns n weights of 1/n, or an empty slice when n < 1.
func EqualWeights(n int) []float64 {
	if n < 1 {
		return []float64{}
	}
	w := make([]float64, n)
	for i := range w {
		w[i] = 1 / float64(n)
	}
	return w
}

// BucketRanges turns variation weights into hash ranges, one per variation, as
// GrowthBook's getBucketRanges does: coverage is clamped to [0, 1] and shrinks every
// range from its start, so that changing coverage never moves an included user to
// another variation. Equal weights are used instead when weights is missing, has a
// length other than numVariations, or does not sum to 1 within 0.01; unlike GrowthBook,
// also when a weight is negative or not finite. A NaN coverage counts as 0.
func BucketRanges(numVariations int, coverage float64, weights []float64) []Range {
	switch {
	case coverage < 0 || math.IsNaN(coverage):
		coverage = 0
	case coverage > 1:
		coverage = 1
	}
	if !validWeights(numVariations, weights) {
		weights = EqualWeights(numVariations)
	}
	ranges := make([]Range, len(weights))
	cumulative := 0.0
	for i, w := range weights {
		ranges[i] = Range{cumulative, cumulative + coverage*w}
		cumulative += w
	}
	return ranges
}

func validWeights(n int, weights []float64) bool {
	if len(weights) != n || n == 0 {
		return false
	}
	sum := 0.0
	for _, w := range weights {
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return false
		}
		sum += w
	}
	return sum >= 0.99 && sum <= 1.01
}

// ChooseVariation returns the index of the first range holding n, or -1 when n falls
// outside all of them (the user is not covered by the experiment).
func ChooseVariation(n float64, ranges []Range) int {
	for i, r := range ranges {
		if n >= r[0] && n < r[1] {
			return i
		}
	}
	return -1
}

// Namespace reserves the share Range of users for one experiment among mutually
// exclusive experiments that use the same ID.
type Namespace struct {
	ID    string     `json:"id"`
	Range [2]float64 `json:"range"`
}

// InNamespace reports whether userID falls in the namespace's range, hashing it with
// seed "__"+ns.ID and hash version 1 as GrowthBook does. It does not allocate.
func InNamespace(userID string, ns Namespace) bool {
	// Version 1 hashes value+seed, i.e. userID + "__" + ns.ID.
	h := fnv1a32(fnv1a32Concat(fnvOffset32, userID, "__"), ns.ID)
	n := float64(h%1000) / 1000
	return n >= ns.Range[0] && n < ns.Range[1]
}
