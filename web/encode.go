package web

import (
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/liftlab/lift/experiments"
)

// appendDecideResponse writes the /v1/decide answer by hand: it is the hottest
// encoding in lift, and reflection-based encoding of a map of structs costs more than
// all the bucketing behind it. With exposures, each assigned decision carries the
// properties of the $exposure event a client that logs its own exposures (after
// "track": false, when the variant is rendered) sends. segments, when not nil, are the
// keys of the user's segments; unknown lists the requested keys that no experiment or
// flag has (omitted when empty).
func appendDecideResponse(b []byte, userID string, ds []experiments.Keyed, sticky map[string]string, exposures bool, segments, unknown []string) []byte {
	b = append(b, `{"user_id":`...)
	b = appendString(b, userID)
	b = append(b, `,"decisions":{`...)
	for i, d := range ds {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, d.Key)
		b = append(b, `:{"variant":`...)
		b = appendString(b, d.Variant)
		b = append(b, `,"value":`...)
		if len(d.Value) == 0 {
			b = append(b, "null"...)
		} else {
			b = append(b, d.Value...) // validated JSON from the store
		}
		b = append(b, `,"reason":"`...)
		b = append(b, d.Reason...)
		b = append(b, `","experiment":`...)
		b = strconv.AppendBool(b, d.Experiment)
		if exposures && d.Assigned {
			b = append(b, `,"exposure":{"experiment":`...)
			b = appendString(b, d.ExperimentKey)
			b = append(b, `,"variant":`...)
			b = appendString(b, d.Variant)
			if d.Segment != "" {
				b = append(b, `,"segment":`...)
				b = appendString(b, d.Segment)
			}
			b = append(b, `,"assignment_probability":`...)
			b = strconv.AppendFloat(b, d.Probability, 'g', -1, 64)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = append(b, '}')
	if len(sticky) > 0 {
		b = append(b, `,"sticky":{`...)
		for i, key := range slices.Sorted(maps.Keys(sticky)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, key)
			b = append(b, ':')
			b = appendString(b, sticky[key])
		}
		b = append(b, '}')
	}
	if segments != nil {
		b = appendStrings(append(b, `,"segments":`...), segments)
	}
	if len(unknown) > 0 {
		b = appendStrings(append(b, `,"unknown_keys":`...), unknown)
	}
	return append(b, '}')
}

// appendStrings appends ss as a JSON array of strings.
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping what JSON requires and replacing
// invalid UTF-8 like encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
