package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Property scrubbing: personal data that clients put into event properties by
// accident (an e-mail address in a search term, a card number in a form field, an IP
// address) is removed before the event is published or stored. A scrubbed member is
// removed whole, key and value, from whatever object holds it; a scrubbed array
// element is removed from its array.
//
// Scrub runs on every event, so it is built for the common case of nothing to remove:
// one pass over the bytes, no allocation, and the costly checks (a regular expression,
// address parsing, the Luhn sum) only for strings that contain what a pattern needs:
// an '@', a run of 7 or more digits, a dotted quad or two colons.

// ScrubReason says why a property was removed.
type ScrubReason int

// Reasons, also the values of the metrics label.
const (
	ScrubProperty ScrubReason = iota // the property's name is on the denylist
	ScrubEmail
	ScrubPhone
	ScrubCard
	ScrubIP
	numScrubReasons
)

var scrubReasonNames = [numScrubReasons]string{"property", "email", "phone", "card", "ip"}

func (r ScrubReason) String() string { return scrubReasonNames[r] }

// ScrubPatterns are the value patterns Scrub knows.
var ScrubPatterns = []string{"email", "phone", "card", "ip"}

// DefaultScrubProperties is the default denylist of property names. Names are compared
// after normalisation (lower case, camelCase and '-', '.', ' ' turned into '_'); a
// leading or trailing '*' matches any prefix or suffix.
var DefaultScrubProperties = []string{
	"email", "e_mail", "*_email", "phone", "*_phone", "phone_number", "mobile", "telephone",
	"password", "*_password", "passwd", "ssn", "social_security_number", "card_number",
	"credit_card", "cc_number", "cvv", "cvc", "iban", "ip", "ip_address", "ipaddress", "*_ip",
	"remote_addr", "x_forwarded_for",
}

// ScrubRules configure a Scrubber.
type ScrubRules struct {
	// Patterns are the value patterns to remove, from ScrubPatterns.
	Patterns []string
	// Properties is the denylist of property names.
	Properties []string
}

// Scrubbed counts what one Scrub call removed, by reason.
type Scrubbed [numScrubReasons]int

// Total is the number of members and elements removed.
func (s Scrubbed) Total() int {
	n := 0
	for _, c := range s {
		n += c
	}
	return n
}

// Scrubber removes personal data from event properties. It is safe for concurrent use.
type Scrubber struct {
	email, phone, card, ip bool
	exact                  map[string]struct{}
	prefixes, suffixes     [][]byte
	longest                int // longest exact name, to skip longer keys without work
	// last holds the last byte of every exact name and suffix: most keys end in
	// another and are let through without normalising them.
	last [256]bool
}

// NewScrubber returns a scrubber for the rules; it returns an error naming an unknown
// pattern or an empty property name.
func NewScrubber(r ScrubRules) (*Scrubber, error) {
	s := &Scrubber{exact: map[string]struct{}{}}
	for _, p := range r.Patterns {
		switch p {
		case "email":
			s.email = true
		case "phone":
			s.phone = true
		case "card":
			s.card = true
		case "ip":
			s.ip = true
		default:
			return nil, fmt.Errorf("unknown scrub pattern %q (want %s)", p, strings.Join(ScrubPatterns, ", "))
		}
	}
	for _, name := range r.Properties {
		glob := strings.Trim(name, "*")
		n := string(normalizeName(nil, []byte(glob)))
		switch {
		case n == "":
			return nil, fmt.Errorf("empty property name %q in the scrub denylist", name)
		case strings.HasPrefix(name, "*"):
			s.suffixes = append(s.suffixes, []byte(n))
			s.last[n[len(n)-1]] = true
		case strings.HasSuffix(name, "*"):
			s.prefixes = append(s.prefixes, []byte(n))
		default:
			s.exact[n] = struct{}{}
			s.longest = max(s.longest, len(n))
			s.last[n[len(n)-1]] = true
		}
	}
	return s, nil
}

// Scrub returns props without the members and array elements the rules remove, and
// how many it removed by reason. When nothing is removed it returns props itself.
// props is a JSON value as ParseEvent leaves it; input that is not valid JSON is
// dropped whole (returned as nil and counted as one property).
func (s *Scrubber) Scrub(props json.RawMessage) (json.RawMessage, Scrubbed) {
	if s == nil || len(props) == 0 {
		return props, Scrubbed{}
	}
	w := scrubWalk{s: s, b: props}
	w.top()
	switch {
	case w.bad:
		return nil, Scrubbed{ScrubProperty: 1}
	case w.n.Total() == 0:
		return props, Scrubbed{}
	}
	// Something goes: walk again, writing what stays.
	found := w.n
	w = scrubWalk{s: s, b: props, write: true, out: make([]byte, 0, len(props))}
	w.top()
	return w.out, found
}

// scrubWalk is one pass over a JSON value. Without write it only counts; with write
// it also appends the scrubbed value to out.
type scrubWalk struct {
	s     *Scrubber
	b     []byte
	write bool
	out   []byte
	n     Scrubbed
	bad   bool
}

const keep = ScrubReason(-1)

func (w *scrubWalk) top() {
	i := w.ws(0)
	if i >= len(w.b) {
		w.bad = true
		return
	}
	var end int
	switch w.b[i] {
	case '{', '[':
		end = w.container(i)
	default:
		var r ScrubReason
		end, r = w.scalar(i)
		if r != keep {
			w.n[r]++
			if w.write {
				w.out = append(w.out[:0], "null"...)
			}
		} else {
			w.emit(w.b[i:end])
		}
	}
	if w.ws(end) != len(w.b) {
		w.bad = true
	}
}

func (w *scrubWalk) emit(b []byte) {
	if w.write {
		w.out = append(w.out, b...)
	}
}

func (w *scrubWalk) emitByte(c byte) {
	if w.write {
		w.out = append(w.out, c)
	}
}

func (w *scrubWalk) ws(i int) int {
	for i < len(w.b) && (w.b[i] == ' ' || w.b[i] == '\t' || w.b[i] == '\n' || w.b[i] == '\r') {
		i++
	}
	return i
}

// container walks the object or array at b[i] and returns the index after it.
func (w *scrubWalk) container(i int) int {
	open := w.b[i]
	closing := byte('}')
	if open == '[' {
		closing = ']'
	}
	w.emitByte(open)
	i = w.ws(i + 1)
	if i < len(w.b) && w.b[i] == closing {
		w.emitByte(closing)
		return i + 1
	}
	first := true
	for !w.bad {
		var key []byte
		if open == '{' {
			ke, _ := w.str(i, false)
			if w.bad {
				return len(w.b)
			}
			key = w.b[i:ke]
			if i = w.ws(ke); i >= len(w.b) || w.b[i] != ':' {
				w.bad = true
				return len(w.b)
			}
			i = w.ws(i + 1)
		}
		switch {
		case i >= len(w.b):
			w.bad = true
			return len(w.b)
		case key != nil && w.s.denied(key):
			w.n[ScrubProperty]++
			i = w.skip(i)
		case w.b[i] == '{' || w.b[i] == '[':
			w.sep(&first, key)
			i = w.container(i)
		default:
			end, r := w.scalar(i)
			if r != keep {
				w.n[r]++
			} else {
				w.sep(&first, key)
				w.emit(w.b[i:end])
			}
			i = end
		}
		i = w.ws(i)
		switch {
		case i >= len(w.b):
			w.bad = true
		case w.b[i] == ',':
			i = w.ws(i + 1)
		case w.b[i] == closing:
			w.emitByte(closing)
			return i + 1
		default:
			w.bad = true
		}
	}
	return len(w.b)
}

// sep writes the comma before a kept member or element, and the member's key.
func (w *scrubWalk) sep(first *bool, key []byte) {
	if !*first {
		w.emitByte(',')
	}
	*first = false
	if key != nil {
		w.emit(key)
		w.emitByte(':')
	}
}

// skip returns the index after the value at b[i], checking only its structure.
func (w *scrubWalk) skip(i int) int {
	depth := 0
	for i < len(w.b) {
		switch c := w.b[i]; c {
		case '"':
			i, _ = w.str(i, false)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth < 0 {
				w.bad = true
				return len(w.b)
			}
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	if depth != 0 {
		w.bad = true
	}
	return i
}

// scalar returns the end of the string, number or literal at b[i] and whether a
// pattern removes it.
func (w *scrubWalk) scalar(i int) (int, ScrubReason) {
	switch c := w.b[i]; {
	case c == '"':
		return w.str(i, true)
	case c == '-' || c >= '0' && c <= '9':
		end, digits := i, 0
		for end < len(w.b) && strings.IndexByte("+-.eE0123456789", w.b[end]) >= 0 {
			if w.b[end] >= '0' && w.b[end] <= '9' {
				digits++
			}
			end++
		}
		// Card numbers sent as JSON numbers: integers of 13 to 19 digits.
		if w.s.card && digits >= 13 && digits <= 19 && isCardNumber(string(w.b[i:end])) {
			return end, ScrubCard
		}
		return end, keep
	default:
		for _, lit := range [][]byte{[]byte("true"), []byte("false"), []byte("null")} {
			if bytes.HasPrefix(w.b[i:], lit) {
				return i + len(lit), keep
			}
		}
		w.bad = true
		return len(w.b), keep
	}
}

// str returns the end of the string at b[i] (after the closing quote). With check it
// also tests the value against the patterns, decoding it only when the bytes hint
// that one could match.
func (w *scrubWalk) str(i int, check bool) (int, ScrubReason) {
	if i >= len(w.b) || w.b[i] != '"' {
		w.bad = true
		return len(w.b), keep
	}
	s := w.s
	suspect := false
	digits, dots, colons := 0, 0, 0
	var prev byte
	for j := i + 1; j < len(w.b); j, prev = j+1, w.b[j] {
		c := w.b[j]
		switch {
		case c == '"':
			if !check || !(suspect || runSuspect(s, digits, dots)) {
				return j + 1, keep
			}
			return j + 1, s.match(w.b[i : j+1])
		case c == '\\':
			suspect = true
			j++ // the escaped byte; \uXXXX's hex digits are harmless to scan
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		case c == ' ' || c == '-' || c == '(' || c == ')' || c == '/' || c == '+':
		case c == '@':
			suspect = suspect || s.email
		default:
			// A run that runs straight into a letter, ':' or '_' is part of an
			// identifier or a time (2026-01-02T15:04), which neither the phone nor
			// the card pattern takes; an IPv4 address may have a port.
			if !(isDigit(prev) && (isLetter(c) || c == ':' || c == '_')) {
				suspect = suspect || runSuspect(s, digits, dots)
			} else {
				suspect = suspect || s.ip && dots >= 3 && digits >= 4
			}
			digits, dots = 0, 0
			if c == ':' {
				// IPv6 addresses have "::" or all eight groups.
				if colons++; prev == ':' || colons >= 7 {
					suspect = suspect || s.ip
				}
			}
		}
	}
	w.bad = true
	return len(w.b), keep
}

// runSuspect: a run of digits and separators long enough for a phone or card number,
// or dotted like an IPv4 address.
func runSuspect(s *Scrubber, digits, dots int) bool {
	return digits >= 7 && (s.phone || s.card || s.ip) || s.ip && dots >= 3
}

// denied reports whether a member with this key (a JSON string, quotes included) is
// on the denylist.
func (s *Scrubber) denied(key []byte) bool {
	if len(s.exact) == 0 && len(s.prefixes) == 0 && len(s.suffixes) == 0 {
		return false
	}
	raw := key[1 : len(key)-1]
	for _, c := range raw {
		if c == '\\' {
			var decoded string
			if json.Unmarshal(key, &decoded) != nil {
				return true // cannot tell: err on the side of removing
			}
			raw = []byte(decoded)
			break
		}
	}
	if len(raw) == 0 {
		return false
	}
	if len(s.prefixes) == 0 {
		if !s.last[normalizedLast(raw[len(raw)-1])] {
			return false
		}
		if len(s.suffixes) == 0 && len(raw) > 2*s.longest {
			return false // normalising at most doubles a name's length (camelCase)
		}
	}
	var buf [128]byte
	n := normalizeName(buf[:0], raw)
	if _, ok := s.exact[string(n)]; ok {
		return true
	}
	for _, p := range s.prefixes {
		if bytes.HasPrefix(n, p) {
			return true
		}
	}
	for _, p := range s.suffixes {
		if bytes.HasSuffix(n, p) {
			return true
		}
	}
	return false
}

// normalizedLast is what normalizeName makes of a name's last byte.
func normalizedLast(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c + 'a' - 'A'
	case c == '-' || c == '.' || c == ' ':
		return '_'
	}
	return c
}

// normalizeName appends name in lower snake case: "billingEmail", "Billing-Email" and
// "billing_email" all become billing_email.
func normalizeName(dst, name []byte) []byte {
	for i, c := range name {
		switch {
		case c >= 'A' && c <= 'Z':
			if i > 0 {
				if p := name[i-1]; p >= 'a' && p <= 'z' || p >= '0' && p <= '9' {
					dst = append(dst, '_')
				}
			}
			dst = append(dst, c+'a'-'A')
		case c == '-' || c == '.' || c == ' ':
			dst = append(dst, '_')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// match decodes the JSON string quoted and tests it against the patterns, card
// numbers before phones since a card number also looks like a long phone number.
func (s *Scrubber) match(quoted []byte) ScrubReason {
	var v string
	if json.Unmarshal(quoted, &v) != nil {
		return ScrubProperty
	}
	switch {
	case s.card && containsCardNumber(v):
		return ScrubCard
	case s.email && emailPattern.MatchString(v):
		return ScrubEmail
	case s.ip && containsIP(v):
		return ScrubIP
	case s.phone && containsPhone(v):
		return ScrubPhone
	}
	return keep
}

var emailPattern = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`)

// containsCardNumber finds 13 to 19 digits, alone or split by single spaces or dashes,
// that pass the Luhn check.
func containsCardNumber(v string) bool {
	for i := 0; i < len(v); {
		if !isDigit(v[i]) || i > 0 && isDigit(v[i-1]) {
			i++
			continue
		}
		j, digits := i, 0
		for j < len(v) {
			if isDigit(v[j]) {
				digits++
				j++
			} else if (v[j] == ' ' || v[j] == '-') && j+1 < len(v) && isDigit(v[j+1]) {
				j++
			} else {
				break
			}
		}
		if digits >= 13 && digits <= 19 && isCardNumber(v[i:j]) {
			return true
		}
		i = j
	}
	return false
}

// isCardNumber applies the Luhn check to the digits of s (other bytes are skipped).
func isCardNumber(s string) bool {
	sum, n := 0, 0
	for i := len(s) - 1; i >= 0; i-- {
		if !isDigit(s[i]) {
			if s[i] == '.' || s[i] == 'e' || s[i] == 'E' {
				return false // not an integer
			}
			continue
		}
		d := int(s[i] - '0')
		if n%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
	}
	return n >= 13 && n <= 19 && sum%10 == 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// containsIP finds an IPv4 address (a dotted quad of numbers up to 255, not part of a
// longer dotted number such as a version) or an IPv6 address.
func containsIP(v string) bool {
	for _, tok := range strings.FieldsFunc(v, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F' || r == '.' || r == ':' || r == '%')
	}) {
		tok = strings.Trim(tok, ".:")
		if strings.Count(tok, ":") >= 2 || strings.Count(tok, ".") == 3 {
			if a, err := netip.ParseAddr(tok); err == nil && a.IsValid() {
				return true
			}
		}
		// An IPv4 address with a port.
		if host, _, ok := strings.Cut(tok, ":"); ok && strings.Count(host, ".") == 3 {
			if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
				return true
			}
		}
	}
	return false
}

// containsPhone finds a phone number: 7 to 15 digits in groups split by spaces,
// dashes, dots, slashes or parentheses, written either after a '+' ("+44 20 7946
// 0958"), with a parenthesised area code ("(555) 123-4567"), in three or more groups
// ("555-123-4567") or as a trunk prefix and a number ("030 1234567"). Runs that
// belong to a word or an identifier ("ORD-2026-000123"), a time ("2026-01-02
// 15:04"), a date, a decimal number or a dotted quad are not phone numbers; neither
// is a plain run of digits, which is far more often an order or product id (put
// phone numbers' properties on the denylist instead).
func containsPhone(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(isDigit(c) || c == '+' || c == '(') || i > 0 && partOfWord(v, i) {
			continue
		}
		var groups [16]int
		n, cur, paren, seps := 0, 0, false, ""
		j := i
		if c == '+' {
			j++
		}
		for ; j < len(v) && n < len(groups); j++ {
			d := v[j]
			if isDigit(d) {
				cur++
				continue
			}
			if strings.IndexByte(" -./()", d) < 0 {
				break
			}
			if cur > 0 {
				groups[n], n, cur = cur, n+1, 0
			}
			paren = paren || d == '('
			if strings.IndexByte(seps, d) < 0 {
				seps += string(d)
			}
		}
		if cur > 0 && n < len(groups) {
			groups[n], n = cur, n+1
		}
		if j < len(v) && isDigit(v[j-1]) && (isLetter(v[j]) || v[j] == ':' || v[j] == '_') {
			i = j // a word, an identifier or a time
			continue
		}
		g := groups[:n]
		digits := 0
		for _, k := range g {
			digits += k
		}
		trunk := n == 2 && v[i] == '0' && strings.ContainsAny(seps, " /")
		if digits >= 7 && digits <= 15 && (c == '+' || paren || n >= 3 || trunk) && !notPhone(g, seps) {
			return true
		}
		i = max(i, j-1)
	}
	return false
}

// partOfWord: the byte before v[i] continues a word or an identifier (a letter, a
// digit, or '-' / '_' after a letter or digit).
func partOfWord(v string, i int) bool {
	p := v[i-1]
	if isDigit(p) || isLetter(p) || p == '_' {
		return true
	}
	return (p == '-' || p == '#') && i > 1 && (isLetter(v[i-2]) || isDigit(v[i-2]))
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// notPhone: dates, decimals and dotted quads, which look like digit groups too.
func notPhone(groups []int, seps string) bool {
	onlyDots := seps == "."
	switch {
	case onlyDots && (len(groups) == 2 || len(groups) == 4): // 1234.5678, 192.168.100.200
		return true
	case onlyDots && slices.Min(groups) < 2: // 10.0.19041, a version
		return true
	case len(groups) == 3 && !strings.ContainsAny(seps, " ("):
		a, b, c := groups[0], groups[1], groups[2]
		return a == 4 && b <= 2 && c <= 2 || a <= 2 && b <= 2 && c == 4
	}
	return false
}
