package ingest

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is the fast path of event decoding. encoding/json spends most of the
// pipeline's CPU (reflection, a validity pre-pass, a copy and a compaction of every
// properties object, and all of it once in the collector and again in every
// consumer). The scanner below reads the common shape of event JSON, as lift itself
// publishes it and as clients send it, in one pass without reflection. Whenever the
// input is anything it does not handle exactly as encoding/json would (escaped or
// non-ASCII keys, keys matching a field only case-insensitively, duplicate fields,
// escaped strings, values of the wrong type, deep nesting, malformed JSON) it gives
// up and the caller decodes with encoding/json instead, so its results are by
// construction those of encoding/json (FuzzScanMatchesEncodingJSON checks it).

// maxScanDepth is how deeply nested a value the scanner follows before leaving the
// input to encoding/json (whose own limit is far higher).
const maxScanDepth = 64

type scanner struct {
	data   []byte
	i      int
	spaced bool // whitespace skipped since last reset
}

// span is the byte range of one element of an array.
type span struct{ start, end int }

func (s *scanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
			s.spaced = true
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

func (s *scanner) next() byte {
	if s.i < len(s.data) {
		s.i++
		return s.data[s.i-1]
	}
	return 0
}

func (s *scanner) atEnd() bool {
	s.ws()
	return s.i == len(s.data)
}

// scanRequest decodes a collector body {"events":[...],"consent":{...}}.
func scanRequest(data []byte) ([]*fields, *Consent, bool) {
	s := &scanner{data: data}
	s.ws()
	if s.next() != '{' {
		return nil, nil, false
	}
	var (
		events  []*fields
		consent *Consent
		seen    int
	)
	for {
		s.ws()
		key, ok := s.plainString(false)
		if !ok {
			return nil, nil, false
		}
		s.ws()
		if s.next() != ':' {
			return nil, nil, false
		}
		s.ws()
		switch string(key) {
		case "events":
			if seen&1 != 0 || s.peek() != '[' {
				return nil, nil, false
			}
			seen |= 1
			if events, _, ok = s.array(); !ok {
				return nil, nil, false
			}
		case "consent":
			if seen&2 != 0 {
				return nil, nil, false
			}
			seen |= 2
			if consent, ok = s.consent(); !ok {
				return nil, nil, false
			}
		default:
			if strings.EqualFold(string(key), "events") || strings.EqualFold(string(key), "consent") || !s.skip(0, false) {
				return nil, nil, false
			}
		}
		s.ws()
		switch s.next() {
		case ',':
		case '}':
			if events == nil || !s.atEnd() {
				return nil, nil, false
			}
			return events, consent, true
		default:
			return nil, nil, false
		}
	}
}

// scanMessage decodes an AMQP message body: one event object or an array of events
// (null elements come back as nil). spans locates each element in data.
func scanMessage(data []byte) ([]*fields, []span, bool) {
	s := &scanner{data: data}
	s.ws()
	var (
		events []*fields
		spans  []span
		ok     bool
	)
	switch start := s.i; s.peek() {
	case '[':
		events, spans, ok = s.array()
	case '{':
		w := new(fields)
		ok = s.object(w)
		events, spans = []*fields{w}, []span{{start, s.i}}
	}
	if !ok || !s.atEnd() {
		return nil, nil, false
	}
	return events, spans, true
}

// array reads an array of event objects and nulls, starting at '['. An empty array
// gives a non-nil empty slice, like encoding/json.
func (s *scanner) array() ([]*fields, []span, bool) {
	s.i++
	s.ws()
	if s.peek() == ']' {
		s.i++
		return []*fields{}, nil, true
	}
	// One allocation for the events of a typical message or request.
	n := 1 + bytes.Count(s.data[s.i:], []byte(`"type"`))
	slab := make([]fields, 0, n)
	events := make([]*fields, 0, n)
	spans := make([]span, 0, n)
	for {
		s.ws()
		start := s.i
		var w *fields
		switch s.peek() {
		case '{':
			if len(slab) == cap(slab) {
				slab = make([]fields, 0, 16)
			}
			slab = slab[:len(slab)+1]
			w = &slab[len(slab)-1]
			if !s.object(w) {
				return nil, nil, false
			}
		case 'n':
			if !s.literal("null") {
				return nil, nil, false
			}
		default:
			return nil, nil, false
		}
		events = append(events, w)
		spans = append(spans, span{start, s.i})
		s.ws()
		switch s.next() {
		case ',':
		case ']':
			return events, spans, true
		default:
			return nil, nil, false
		}
	}
}

// Member bits of fields, to refuse duplicate keys (encoding/json lets the last one
// win, field by field; not worth imitating).
const (
	fEventID = 1 << iota
	fType
	fUserID
	fTimestamp
	fReceivedAt
	fValue
	fProperties
	fConsent
)

var fieldNames = [...]string{"event_id", "type", "user_id", "timestamp", "received_at", "value", "properties", "consent"}

// object reads one event object, starting at '{'.
func (s *scanner) object(w *fields) bool {
	s.i++
	s.ws()
	if s.peek() == '}' {
		s.i++
		return true
	}
	seen := 0
	for {
		s.ws()
		key, ok := s.plainString(false)
		if !ok {
			return false
		}
		s.ws()
		if s.next() != ':' {
			return false
		}
		s.ws()
		var f int
		switch string(key) {
		case "event_id":
			f = fEventID
		case "type":
			f = fType
		case "user_id":
			f = fUserID
		case "timestamp":
			f = fTimestamp
		case "received_at":
			f = fReceivedAt
		case "value":
			f = fValue
		case "properties":
			f = fProperties
		case "consent":
			f = fConsent
		default:
			for _, name := range fieldNames {
				if strings.EqualFold(string(key), name) {
					return false // encoding/json would match it case-insensitively
				}
			}
			if !s.skip(0, false) {
				return false
			}
		}
		if f != 0 {
			if seen&f != 0 {
				return false
			}
			seen |= f
			if !s.field(w, f) {
				return false
			}
		}
		s.ws()
		switch s.next() {
		case ',':
		case '}':
			return true
		default:
			return false
		}
	}
}

// field reads the value of one known member into w.
func (s *scanner) field(w *fields, f int) bool {
	if f == fProperties {
		start := s.i
		s.spaced = false
		if !s.skip(0, false) {
			return false
		}
		w.properties = s.data[start:s.i]
		w.compact = !s.spaced
		return true
	}
	if f == fConsent {
		c, ok := s.consent()
		w.consent = c
		return ok
	}
	if s.peek() == 'n' {
		// null leaves a field absent (pointers) or empty (strings), as encoding/json.
		return s.literal("null")
	}
	if f == fValue {
		num, ok := s.number()
		if !ok {
			return false
		}
		v, err := strconv.ParseFloat(string(num), 64)
		if err != nil { // out of range: encoding/json names the field
			return false
		}
		w.value = v
		w.has |= fValue
		return true
	}
	b, ok := s.plainString(true)
	if !ok {
		return false
	}
	switch f {
	case fType:
		w.typ = internType(b)
	case fUserID:
		w.userID = string(b)
	case fEventID:
		w.eventID = b
		w.has |= fEventID
	case fTimestamp:
		w.timestamp = b
		w.has |= fTimestamp
	case fReceivedAt:
		w.receivedAt = b
		w.has |= fReceivedAt
	}
	return true
}

// consent reads a consent object, or null (no consent given).
func (s *scanner) consent() (*Consent, bool) {
	if s.peek() == 'n' {
		return nil, s.literal("null")
	}
	if s.next() != '{' {
		return nil, false
	}
	c := &Consent{}
	s.ws()
	if s.peek() == '}' {
		s.i++
		return c, true
	}
	seen := 0
	for {
		s.ws()
		key, ok := s.plainString(false)
		if !ok {
			return nil, false
		}
		s.ws()
		if s.next() != ':' {
			return nil, false
		}
		s.ws()
		var dst *bool
		bit := 0
		switch string(key) {
		case "analytics":
			dst, bit = &c.Analytics, 1
		case "personalization":
			dst, bit = &c.Personalization, 2
		default:
			if strings.EqualFold(string(key), "analytics") || strings.EqualFold(string(key), "personalization") || !s.skip(0, false) {
				return nil, false
			}
		}
		if dst != nil {
			if seen&bit != 0 {
				return nil, false
			}
			seen |= bit
			switch s.peek() {
			case 't':
				*dst = true
				ok = s.literal("true")
			case 'f':
				ok = s.literal("false")
			case 'n': // leaves false, as encoding/json
				ok = s.literal("null")
			default:
				ok = false
			}
			if !ok {
				return nil, false
			}
		}
		s.ws()
		switch s.next() {
		case ',':
		case '}':
			return c, true
		default:
			return nil, false
		}
	}
}

// internType returns the built-in type names without allocating.
func internType(b []byte) string {
	switch string(b) {
	case TypePageView:
		return TypePageView
	case TypeProductView:
		return TypeProductView
	case TypeClick:
		return TypeClick
	case TypeAddToCart:
		return TypeAddToCart
	case TypeRemoveFromCart:
		return TypeRemoveFromCart
	case TypePurchase:
		return TypePurchase
	case TypeExposure:
		return TypeExposure
	}
	return string(b)
}

// ordinary marks the bytes a JSON string may hold as they are: printable ASCII but
// the quote and the backslash.
var ordinary = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// ordinaryRun steps over the ordinary bytes at s.i, eight at a time while it can.
func (s *scanner) ordinaryRun() {
	for s.i+8 <= len(s.data) && !special(binary.LittleEndian.Uint64(s.data[s.i:])) {
		s.i += 8
	}
	for s.i < len(s.data) && ordinary[s.data[s.i]] {
		s.i++
	}
}

// special reports whether any of the eight bytes in x is not ordinary: a quote, a
// backslash, a control character or a non-ASCII byte (the usual SWAR tests for a
// zero byte and for a byte below n, which may report more but never less).
func special(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote, backslash := x^(ones*'"'), x^(ones*'\\')
	return ((quote-ones)&^quote|(backslash-ones)&^backslash|(x-ones*0x20)&^x|x)&highs != 0
}

// plainString reads a string without escapes and returns its contents. It fails on
// escapes, control characters, and non-ASCII bytes unless allowed and valid UTF-8
// (encoding/json replaces invalid UTF-8; keys fold Unicode case).
func (s *scanner) plainString(nonASCII bool) ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	s.i++
	start := s.i
	high := false
	for {
		s.ordinaryRun()
		if s.i == len(s.data) {
			return nil, false
		}
		switch c := s.data[s.i]; {
		case c == '"':
			b := s.data[start:s.i]
			s.i++
			if high && (!nonASCII || !utf8.Valid(b)) {
				return nil, false
			}
			return b, true
		case c >= 0x80:
			high = true
			s.i++
		default: // a backslash or a control character
			return nil, false
		}
	}
}

// skip steps over any valid JSON value, as encoding/json's validity check accepts it
// (bytes ≥ 0x80 in strings unchecked). With inRange, numbers must also fit a
// float64, as encoding/json requires when it decodes them.
func (s *scanner) skip(depth int, inRange bool) bool {
	switch c := s.peek(); {
	case c == '"':
		return s.skipString()
	case c == '{', c == '[':
		if depth >= maxScanDepth {
			return false
		}
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.i++
		s.ws()
		if s.peek() == end {
			s.i++
			return true
		}
		for {
			s.ws()
			if end == '}' {
				if !s.skipString() {
					return false
				}
				s.ws()
				if s.next() != ':' {
					return false
				}
				s.ws()
			}
			if !s.skip(depth+1, inRange) {
				return false
			}
			s.ws()
			switch s.next() {
			case ',':
			case end:
				return true
			default:
				return false
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		n, ok := s.number()
		if ok && inRange {
			_, err := strconv.ParseFloat(string(n), 64)
			ok = err == nil
		}
		return ok
	}
	return false
}

func (s *scanner) skipString() bool {
	if s.peek() != '"' {
		return false
	}
	s.i++
	for {
		s.ordinaryRun()
		if s.i == len(s.data) {
			return false
		}
		c := s.data[s.i]
		s.i++
		switch {
		case c == '"':
			return true
		case c >= 0x80: // not checked, as by encoding/json
		case c < 0x20:
			return false
		default: // a backslash
			if s.i >= len(s.data) {
				return false
			}
			e := s.data[s.i]
			s.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if s.i+4 > len(s.data) {
					return false
				}
				for _, h := range s.data[s.i : s.i+4] {
					if !isHex(h) {
						return false
					}
				}
				s.i += 4
			default:
				return false
			}
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (s *scanner) literal(lit string) bool {
	if len(s.data)-s.i < len(lit) || string(s.data[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// number reads a number by JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() ([]byte, bool) {
	start := s.i
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return nil, false
	}
	if s.peek() == '.' {
		s.i++
		if !s.digits() {
			return nil, false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return nil, false
		}
	}
	return s.data[start:s.i], true
}

// digits reads one or more digits.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.data) && s.data[s.i] >= '0' && s.data[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
