package ingest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

var scanSeeds = []string{
	`[{"event_id":"0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b","type":"page_view","user_id":"u-1","timestamp":"2026-03-10T12:00:00.123Z","received_at":"2026-03-10T12:00:01Z","value":0,"properties":{"path":"/p/1","ref":"bench"}}]`,
	`{"type": "purchase", "user_id": "josé", "value": 12.5e-1, "properties": {"sku": "a", "n": [1, 2.5, -0, true, false, null, {"x": "\u00e9\n"}]}}`,
	`[null, {"type":"click","user_id":"u","extra":{"deep":[[[]]]},"timestamp":null}, {}]`,
	"[ ]", `{"events":[{"type":"click","user_id":"u"}]}`, `{"events":[]}`,
	`[{"Type":"click"}]`, `[{"type":"click","type":"page_view"}]`, `[{"user_id":"a\"b"}]`,
	`[{"value":"1"}]`, `[{"value":1e400}]`, `[{"type":7}]`, `[1]`, `[{"k\u0065y":1}]`, `{"user_id":"\xff"}`,
	`[{"properties":"text"}]`, `[{"properties":01}]`, `[{"properties":{"a":1,}}]`, `{"events":[],"x":1}`,
	`{"events":[{"type":"click","user_id":"u","consent":{"analytics":true}}],"consent":{"analytics":false,"personalization":true}}`,
	`[{"consent":null},{"consent":{"personalization":true,"x":[]}},{"consent":{"Analytics":true}}]`,
}

// FuzzScanMatchesEncodingJSON: whatever the scanner accepts, encoding/json decodes to
// the same events (and the scanner's compact flag and spans are right), so taking the
// fast path never changes what is accepted, refused or stored.
func FuzzScanMatchesEncodingJSON(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, spans, ok := scanMessage(data); ok {
			var want []*wireEvent
			trimmed := bytes.TrimSpace(data)
			if trimmed[0] == '[' {
				var raws []json.RawMessage
				if err := json.Unmarshal(data, &want); err != nil {
					t.Fatalf("scanner accepted what encoding/json refuses (%v)", err)
				}
				if err := json.Unmarshal(data, &raws); err != nil || len(raws) != len(spans) {
					t.Fatalf("raw elements: %v, %d vs %d spans", err, len(raws), len(spans))
				}
				for i, sp := range spans {
					if !bytes.Equal(raws[i], data[sp.start:sp.end]) {
						t.Fatalf("span %d is %q, want %q", i, data[sp.start:sp.end], raws[i])
					}
				}
			} else {
				w := new(wireEvent)
				if err := json.Unmarshal(data, w); err != nil {
					t.Fatalf("scanner accepted what encoding/json refuses (%v)", err)
				}
				want = []*wireEvent{w}
				if sp := spans[0]; !bytes.Equal(trimmed, data[sp.start:sp.end]) {
					t.Fatalf("span is %q, want %q", data[sp.start:sp.end], trimmed)
				}
			}
			sameWire(t, got, want)
		}
		if got, consent, ok := scanRequest(data); ok {
			var want struct {
				Events  []*wireEvent `json:"events"`
				Consent *Consent     `json:"consent"`
			}
			if err := json.Unmarshal(data, &want); err != nil || want.Events == nil {
				t.Fatalf("scanner accepted a request encoding/json refuses (%v)", err)
			}
			sameWire(t, got, want.Events)
			if fmt.Sprint(consent) != fmt.Sprint(want.Consent) {
				t.Fatalf("request consent %v, encoding/json %v", consent, want.Consent)
			}
		}
	})
}

func sameWire(t *testing.T, got []*fields, want []*wireEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, encoding/json %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if (g == nil) != (w == nil) {
			t.Fatalf("event %d: nil %v, encoding/json nil %v", i, g == nil, w == nil)
		}
		if g == nil {
			continue
		}
		if g.compact {
			var buf bytes.Buffer
			if err := json.Compact(&buf, g.properties); err != nil || !bytes.Equal(buf.Bytes(), g.properties) {
				t.Fatalf("event %d: properties %q marked compact", i, g.properties)
			}
		}
		if gs, ws := describe(g), describe(w.fields()); gs != ws {
			t.Fatalf("event %d:\nscanner       %s\nencoding/json %s", i, gs, ws)
		}
		for _, ts := range [][]byte{g.timestamp, g.receivedAt} {
			got, gotErr := parseTime(ts)
			want, wantErr := time.Parse(time.RFC3339Nano, string(ts))
			if (gotErr == nil) != (wantErr == nil) || !got.Equal(want) {
				t.Fatalf("time %q: parseTime %v %v, time.Parse %v %v", ts, got, gotErr, want, wantErr)
			}
		}
	}
}

func describe(f *fields) string {
	opt := func(bit int, b []byte) string {
		if f.has&bit == 0 {
			return "<absent>"
		}
		return fmt.Sprintf("%q", b)
	}
	v := "<absent>"
	if f.has&fValue != 0 {
		v = fmt.Sprint(f.value)
	}
	return fmt.Sprintf("id=%s type=%q user=%q ts=%s recv=%s value=%s props=%q consent=%v",
		opt(fEventID, f.eventID), f.typ, f.userID, opt(fTimestamp, f.timestamp), opt(fReceivedAt, f.receivedAt), v, f.properties, f.consent)
}

// FuzzParseTime: parseTime accepts what time.Parse(time.RFC3339Nano) accepts, as
// the same instant.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-03-10T12:00:00Z", "2026-03-10T12:00:00.123456789+01:00", "2026-03-10T12:00:00,5Z",
		"2026-03-10t12:00:00z", "2026-03-10T1:00:00Z", "2026-03-10T12:00:00+24:00", "2026-02-30T12:00:00Z", "10000-01-01T00:00:00Z"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotErr := parseTime(b)
		want, wantErr := time.Parse(time.RFC3339Nano, string(b))
		if (gotErr == nil) != (wantErr == nil) || !got.Equal(want) {
			t.Fatalf("%q: parseTime %v %v, time.Parse %v %v", b, got, gotErr, want, wantErr)
		}
	})
}

func TestScannerFallsBack(t *testing.T) {
	// Inputs the scanner leaves to encoding/json, each for its own reason.
	for _, s := range []string{
		`[{"Type":"click"}]`,                    // case-insensitive match
		`[{"type":"click","type":"page_view"}]`, // duplicate key
		`[{"user_id":"a\"b"}]`,                  // escaped string
		`[{"value":"1"}]`, `[{"type":7}]`,       // wrong types
		`[{"value":1e400}]`,                // out of range
		`[{"k\u0065y":1}]`, `[{"typé":1}]`, // escaped or non-ASCII key
		`{"user_id":"\xff"}`, // invalid UTF-8 (replaced by encoding/json)
		`[{"consent":{"Analytics":true}}]`, `[{"consent":{"analytics":1}}]`, `[{"consent":[]}]`,
		`[1]`, `[{"a":1}`, `[{"properties":{"a":1,}}]`, `[{}] x`,
		`[{"p":` + strings.Repeat("[", maxScanDepth+1) + strings.Repeat("]", maxScanDepth+1) + `}]`,
	} {
		if _, _, ok := scanMessage([]byte(s)); ok {
			t.Errorf("scanner accepted %s", s)
		}
	}
	for _, s := range []string{`{"Events":[]}`, `{"events":null}`, `[]`, `{"consent":{}}`, `{"events":[],"events":[]}`,
		`{"events":[],"consent":{"Analytics":true}}`, `{"events":[],"consent":{"analytics":1}}`} {
		if _, _, ok := scanRequest([]byte(s)); ok {
			t.Errorf("scanner accepted request %s", s)
		}
	}
}

func TestScannerAccepts(t *testing.T) {
	for _, s := range scanSeeds[:3] {
		if _, _, ok := scanMessage([]byte(s)); !ok {
			t.Errorf("scanner refused %s", s)
		}
	}
	for _, s := range []string{" {\"events\" : [ {\"type\":\"click\"} ] }\n",
		`{"x":[1],"consent":{"analytics":true,"personalization":null,"y":0},"events":[]}`} {
		if _, _, ok := scanRequest([]byte(s)); !ok {
			t.Errorf("scanner refused request %s", s)
		}
	}
	_, consent, _ := scanRequest([]byte(`{"events":[],"consent":{"analytics":true}}`))
	if consent == nil || !consent.Analytics || consent.Personalization {
		t.Errorf("request consent %+v, want analytics only", consent)
	}
}

// special finds every byte that is not ordinary, wherever it stands in the word.
func TestSpecial(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			word := []byte("abcdefgh")
			word[pos] = byte(c)
			got := special(binary.LittleEndian.Uint64(word))
			if !ordinary[c] && !got {
				t.Fatalf("byte %#x at %d not found special", c, pos)
			}
			if ordinary[c] && got {
				t.Fatalf("ordinary byte %#x at %d found special", c, pos)
			}
		}
	}
}
