package ingest

import (
	"encoding/json"
	"slices"
	"strconv"
)

// PropertyType is the kind of one entry of PropertyColumns: a top-level property's
// JSON type, or (Item…) a scalar element of a top-level array. The values are those
// of the Enum8 column events.prop_types (migration 00046).
type PropertyType int8

// The property types, as events.prop_types names them.
const (
	PropNull        PropertyType = 0 // also what a missing key reads as
	PropString      PropertyType = 1
	PropNumber      PropertyType = 2
	PropBoolean     PropertyType = 3
	PropArray       PropertyType = 4
	PropObject      PropertyType = 5
	PropItemNull    PropertyType = 6
	PropItemString  PropertyType = 7
	PropItemNumber  PropertyType = 8
	PropItemBoolean PropertyType = 9
)

// PropertyColumns are an event's properties as the events table keeps them beside
// the JSON text, so that conditions read exactly the top-level keys: one entry per
// top-level key, in the order of the text, then one entry per scalar element of each
// top-level array, under the array's key, in array order. Strings are in Strings,
// numbers (and booleans, as 1 or 0) in Numbers; the other slot is empty or 0.
//
// The entries are the properties as the segment engine and encoding/json decode
// them into a map: a key given twice keeps its last value, escapes are decoded
// (invalid UTF-8 and lone surrogates as U+FFFD), and properties that are not a JSON
// object, or hold a number out of float64's range anywhere, have no entries at all.
type PropertyColumns struct {
	Keys    []string
	Types   []PropertyType
	Strings []string
	Numbers []float64
}

// ExtractProperties returns the columns of a properties object (compact or not).
// It does not retain props.
func ExtractProperties(props []byte) PropertyColumns {
	var c PropertyColumns
	if len(props) == 0 || string(props) == "{}" {
		return c
	}
	p := propScanner{scanner: scanner{data: props}}
	if !p.object() {
		return extractSlow(props)
	}
	return p.columns()
}

// propScanner reads a properties object in one pass. Like the event scanner, it
// gives up on anything it does not read exactly as encoding/json would (here: deep
// nesting, malformed JSON), and ExtractProperties decodes with encoding/json then.
type propScanner struct {
	scanner
	top   []propEntry
	items []propItem
}

type propEntry struct {
	key   string
	typ   PropertyType
	str   string
	num   float64
	items int // this entry's items: items[from:from+n] as numbered at columns()
	from  int
}

type propItem struct {
	typ PropertyType
	str string
	num float64
}

// object reads the whole input: one object, nothing after it but white space. A
// number out of range anywhere leaves no entries (encoding/json fails then).
func (p *propScanner) object() bool {
	p.ws()
	if p.next() != '{' {
		return false
	}
	p.ws()
	if p.peek() == '}' {
		p.i++
		return p.atEnd()
	}
	for {
		p.ws()
		key, ok := p.str()
		if !ok {
			return false
		}
		p.ws()
		if p.next() != ':' {
			return false
		}
		p.ws()
		e := propEntry{key: key, from: len(p.items)}
		switch c := p.peek(); c {
		case '[':
			e.typ = PropArray
			if !p.array(&e) {
				return false
			}
		case '{':
			e.typ = PropObject
			if !p.skip(0, true) {
				return false
			}
		default:
			var it propItem
			if !p.scalar(&it) {
				return false
			}
			e.typ, e.str, e.num = it.typ, it.str, it.num
		}
		p.top = append(p.top, e)
		p.ws()
		switch p.next() {
		case ',':
		case '}':
			return p.atEnd()
		default:
			return false
		}
	}
}

// array reads a top-level array, keeping its scalar elements as items.
func (p *propScanner) array(e *propEntry) bool {
	p.i++
	p.ws()
	if p.peek() == ']' {
		p.i++
		return true
	}
	for {
		p.ws()
		switch p.peek() {
		case '[', '{':
			if !p.skip(1, true) {
				return false
			}
		default:
			var it propItem
			if !p.scalar(&it) {
				return false
			}
			it.typ += PropItemNull - PropNull
			p.items = append(p.items, it)
			e.items++
		}
		p.ws()
		switch p.next() {
		case ',':
		case ']':
			return true
		default:
			return false
		}
	}
}

// scalar reads a string, number, boolean or null.
func (p *propScanner) scalar(it *propItem) bool {
	switch c := p.peek(); {
	case c == '"':
		s, ok := p.str()
		it.typ, it.str = PropString, s
		return ok
	case c == 't':
		it.typ, it.num = PropBoolean, 1
		return p.literal("true")
	case c == 'f':
		it.typ = PropBoolean
		return p.literal("false")
	case c == 'n':
		it.typ = PropNull
		return p.literal("null")
	}
	n, ok := p.number()
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return false // out of range: encoding/json fails, and so does extractSlow
	}
	it.typ, it.num = PropNumber, f
	return true
}

// str reads a string token and decodes it as encoding/json does.
func (p *propScanner) str() (string, bool) {
	start := p.i
	if b, ok := p.plainString(false); ok {
		return string(b), true
	}
	p.i = start
	if !p.skipString() {
		return "", false
	}
	var s string
	if json.Unmarshal(p.data[start:p.i], &s) != nil {
		return "", false
	}
	return s, true
}

// columns lays the entries out, keeping the last of each key with its items.
func (p *propScanner) columns() PropertyColumns {
	top := p.top
	if len(top) > 1 {
		seen := make(map[string]bool, len(top))
		kept := top[:0:0]
		for i := len(top) - 1; i >= 0; i-- {
			if !seen[top[i].key] {
				seen[top[i].key] = true
				kept = append(kept, top[i])
			}
		}
		if len(kept) < len(top) {
			slices.Reverse(kept)
			top = kept
		}
	}
	n := len(top)
	for _, e := range top {
		n += e.items
	}
	c := PropertyColumns{Keys: make([]string, 0, n), Types: make([]PropertyType, 0, n),
		Strings: make([]string, 0, n), Numbers: make([]float64, 0, n)}
	for _, e := range top {
		c.Keys, c.Types, c.Strings, c.Numbers = append(c.Keys, e.key), append(c.Types, e.typ), append(c.Strings, e.str), append(c.Numbers, e.num)
	}
	for _, e := range top {
		for _, it := range p.items[e.from : e.from+e.items] {
			c.Keys, c.Types, c.Strings, c.Numbers = append(c.Keys, e.key), append(c.Types, it.typ), append(c.Strings, it.str), append(c.Numbers, it.num)
		}
	}
	return c
}

// extractSlow is ExtractProperties through encoding/json, for what the scanner does
// not read; keys come in byte order there, since a map has none.
func extractSlow(props []byte) PropertyColumns {
	var m map[string]any
	if json.Unmarshal(props, &m) != nil || len(m) == 0 {
		return PropertyColumns{}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var c PropertyColumns
	add := func(k string, v any, item bool) {
		var t PropertyType
		var s string
		var f float64
		switch x := v.(type) {
		case nil:
			t = PropNull
		case string:
			t, s = PropString, x
		case float64:
			t, f = PropNumber, x
		case bool:
			t = PropBoolean
			if x {
				f = 1
			}
		case []any:
			t = PropArray
		default:
			t = PropObject
		}
		if item {
			t += PropItemNull - PropNull
		}
		c.Keys, c.Types, c.Strings, c.Numbers = append(c.Keys, k), append(c.Types, t), append(c.Strings, s), append(c.Numbers, f)
	}
	for _, k := range keys {
		add(k, m[k], false)
	}
	for _, k := range keys {
		if a, ok := m[k].([]any); ok {
			for _, v := range a {
				switch v.(type) {
				case []any, map[string]any:
				default:
					add(k, v, true)
				}
			}
		}
	}
	return c
}
