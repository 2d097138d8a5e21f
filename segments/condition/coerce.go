package condition

// GrowthBook's reference SDK is JavaScript. Its conditions no longer convert between
// types, but some JavaScript behaviour remains part of the language: how a number is
// written when a version operator reads it (String(n)), how strings order (by UTF-16
// code units), and the padded form versions compare in. These helpers reproduce them,
// and Number(s) for json.Number attributes.

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// appendJSNumber appends Number.prototype.toString() of f: plain digits for magnitudes
// in [1e-7, 1e21), exponent notation like "1e+21" outside.
func appendJSNumber(dst []byte, f float64) []byte {
	switch {
	case f != f:
		return append(dst, "NaN"...)
	case f == 0:
		return append(dst, '0')
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// strconv's shortest round-trip digits are the digits JavaScript prints; only the
	// layout differs.
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], f, 'e', -1, 64)
	var digits [24]byte
	k := 0
	exp := 0
	for i := 0; i < len(e); i++ {
		c := e[i]
		if c == 'e' {
			exp = parseExponent(e[i+1:])
			break
		}
		if c != '.' {
			digits[k] = c
			k++
		}
	}
	d := digits[:k]
	n := exp + 1 // position of the decimal point relative to the digits
	switch {
	case k <= n && n <= 21:
		dst = append(dst, d...)
		for i := k; i < n; i++ {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, d[:n]...)
		dst = append(dst, '.')
		dst = append(dst, d[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for i := n; i < 0; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, d...)
	default:
		dst = append(dst, d[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}

// parseExponent reads strconv's exponent, e.g. "+21" or "-07".
func parseExponent(b []byte) int {
	neg := len(b) > 0 && b[0] == '-'
	n := 0
	for _, c := range b {
		if isDigit(c) {
			n = n*10 + int(c-'0')
		}
	}
	if neg {
		return -n
	}
	return n
}

// stringToNumber is Number(s): surrounding white space is ignored, "" is 0, 0x/0o/0b
// prefixes and Infinity are understood, anything else that is not a decimal literal is
// NaN.
func stringToNumber(s string) float64 {
	s = strings.TrimFunc(s, isJSSpace)
	if s == "" {
		return 0
	}
	switch s {
	case "Infinity", "+Infinity":
		return math.Inf(1)
	case "-Infinity":
		return math.Inf(-1)
	}
	if len(s) > 2 && s[0] == '0' {
		switch s[1] {
		case 'x', 'X':
			return parseRadix(s[2:], 16)
		case 'o', 'O':
			return parseRadix(s[2:], 8)
		case 'b', 'B':
			return parseRadix(s[2:], 2)
		}
	}
	if !isDecimalLiteral(s) {
		return math.NaN()
	}
	// The literal is valid, so the only possible error is a range error, for which
	// ParseFloat returns ±Inf or 0 just as JavaScript does.
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}

// isDecimalLiteral matches [+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?,
// a stricter grammar than strconv.ParseFloat's (no underscores, "inf" or hex floats).
func isDecimalLiteral(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && isDigit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		expDigits := 0
		for i < len(s) && isDigit(s[i]) {
			i++
			expDigits++
		}
		if expDigits == 0 {
			return false
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func parseRadix(s string, base int) float64 {
	f := 0.0
	for i := 0; i < len(s); i++ {
		var d int
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			d = int(c - '0')
		case c >= 'a' && c <= 'f':
			d = int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = int(c-'A') + 10
		default:
			return math.NaN()
		}
		if d >= base {
			return math.NaN()
		}
		f = f*float64(base) + float64(d)
	}
	if u, err := strconv.ParseUint(s, base, 64); err == nil {
		return float64(u) // exact rounding where it fits
	}
	return f
}

// jsLower is String.prototype.toLowerCase, up to Go's simple case mapping.
func jsLower(s string) string {
	return strings.ToLower(s)
}

// appendASCIILower lower-cases an ASCII string into dst; ok is false for non-ASCII
// input, which needs the full Unicode mapping.
func appendASCIILower(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return nil, false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// compareUTF16 orders two UTF-8 strings as JavaScript orders them, by UTF-16 code
// units. That is code point order except that characters above U+FFFF (surrogate
// pairs, 0xD800…) sort before U+E000…U+FFFF.
func compareUTF16[A, B ~string | ~[]byte](a A, b B) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		switch {
		case len(a) < len(b):
			return -1
		case len(a) > len(b):
			return 1
		}
		return 0
	}
	ca, cb := a[i], b[i]
	// Only lead bytes can differ between the two orders; a difference in a
	// continuation byte lies inside two characters of the same length.
	if ca >= 0xC0 && cb >= 0xC0 {
		switch {
		case ca >= 0xF0 && cb >= 0xEE && cb < 0xF0:
			return -1
		case cb >= 0xF0 && ca >= 0xEE && ca < 0xF0:
			return 1
		}
	}
	if ca < cb {
		return -1
	}
	return 1
}

// appendPaddedVersion appends GrowthBook's paddedVersionString(v), a form of a version
// in which plain string order is version order: a leading "v" and build metadata are
// dropped, parts split on "-" and ".", numeric parts padded to five characters with
// spaces, and "~" appended to a bare major.minor.patch so it sorts after its
// pre-releases.
func appendPaddedVersion(dst []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		if x != "" {
			return padVersion(dst, x)
		}
	case nil, bool, []any, []string, map[string]any, map[string]string:
	default:
		if f, ok := goNumber(v); ok {
			var buf [32]byte
			return padVersion(dst, appendJSNumber(buf[:0], f))
		}
	}
	return padVersion(dst, "0")
}

func padVersion[T ~string | ~[]byte](dst []byte, s T) []byte {
	if len(s) > 0 && s[0] == 'v' {
		s = s[1:]
	}
	// JavaScript's /\+.*$/ cannot cross a line terminator, so build metadata starts at
	// the first "+" after the last one.
	from := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\n' || s[i] == '\r':
			from = i + 1
		case s[i] == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9):
			from = i + 3
		}
	}
	for i := from; i < len(s); i++ {
		if s[i] == '+' {
			s = s[:i]
			break
		}
	}
	parts := 1
	for i := 0; i < len(s); i++ {
		if s[i] == '-' || s[i] == '.' {
			parts++
		}
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '-' && s[i] != '.' {
			continue
		}
		if start > 0 {
			dst = append(dst, '-')
		}
		part := s[start:i]
		numeric := len(part) > 0
		for j := 0; j < len(part); j++ {
			if !isDigit(part[j]) {
				numeric = false
				break
			}
		}
		if numeric {
			for j := len(part); j < 5; j++ {
				dst = append(dst, ' ')
			}
		}
		dst = append(dst, part...)
		start = i + 1
	}
	if parts == 3 {
		dst = append(dst, '-', '~')
	}
	return dst
}
