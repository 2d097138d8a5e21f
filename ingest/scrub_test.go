package ingest_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liftlab/lift/ingest"
)

func defaultScrubber(t testing.TB) *ingest.Scrubber {
	t.Helper()
	s, err := ingest.NewScrubber(ingest.ScrubRules{Patterns: ingest.ScrubPatterns, Properties: ingest.DefaultScrubProperties})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScrub(t *testing.T) {
	s := defaultScrubber(t)
	for _, tc := range []struct {
		name, in, want string
		removed        map[string]int
	}{
		{"nothing to remove", `{"path":"/pricing","price":12.5,"tags":["a","b"],"ok":true,"n":null}`, "", nil},
		{"denylisted names in any spelling", `{"email":"x","userEmail":"y","Billing-Phone":"z","zip":"12345","ship":"dhl"}`,
			`{"zip":"12345","ship":"dhl"}`, map[string]int{"property": 3}},
		{"denylisted object goes whole", `{"password":{"a":1,"b":[1,2]},"k":1}`, `{"k":1}`, map[string]int{"property": 1}},
		{"e-mail anywhere in a value", `{"q":"mail me at a.b+c@example.co.uk please","k":"v"}`, `{"k":"v"}`, map[string]int{"email": 1}},
		{"escaped e-mail", `{"q":"a\u0040example.com","k":"v"}`, `{"k":"v"}`, map[string]int{"email": 1}},
		{"at sign alone is kept", `{"handle":"@lift","k":"v"}`, "", nil},
		{"card number with spaces", `{"note":"4111 1111 1111 1111","k":1}`, `{"k":1}`, map[string]int{"card": 1}},
		{"card number as a JSON number", `{"cc":4111111111111111,"k":1}`, `{"k":1}`, map[string]int{"card": 1}},
		{"long number failing Luhn is kept", `{"order":"4111111111111112","n":4111111111111112}`, "", nil},
		{"phone with country code", `{"contact":"+44 20 7946 0958","k":1}`, `{"k":1}`, map[string]int{"phone": 1}},
		{"phone with area code", `{"contact":"call (555) 123-4567 today","k":1}`, `{"k":1}`, map[string]int{"phone": 1}},
		{"phone in groups", `{"contact":"555-123-4567","k":1}`, `{"k":1}`, map[string]int{"phone": 1}},
		{"ids, dates, times and decimals are not phones", `{"order":"ORD-2026-000123","d":"2026-01-02","t":"2026-01-02 15:04:05","ts":"2026-01-02T15:04:05Z","x":"1234.5678","sku":"12345678","v":"10.0.19041"}`, "", nil},
		{"IPv4 address", `{"where":"from 203.0.113.7","k":1}`, `{"k":1}`, map[string]int{"ip": 1}},
		{"IPv4 address with a port", `{"where":"203.0.113.7:8080","k":1}`, `{"k":1}`, map[string]int{"ip": 1}},
		{"IPv6 address", `{"where":"2001:db8::1","k":1}`, `{"k":1}`, map[string]int{"ip": 1}},
		{"version numbers are not addresses", `{"v":"1.2.3","w":"1.2.3.4.5"}`, "", nil},
		{"nested objects and arrays", `{"a":{"b":{"email":"x","c":1}},"l":["ok","x@example.com",{"phone":"1"},3]}`,
			`{"a":{"b":{"c":1}},"l":["ok",{},3]}`, map[string]int{"property": 2, "email": 1}},
		{"everything removed", `{"email":"x","q":"y@example.com"}`, `{}`, map[string]int{"property": 1, "email": 1}},
		{"whitespace is tolerated", `{ "email" : "x" , "k" : [ 1 , 2 ] }`, `{"k":[1,2]}`, map[string]int{"property": 1}},
		{"not JSON is dropped whole", `{"a":`, "null", map[string]int{"property": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, n := s.Scrub(json.RawMessage(tc.in))
			want := tc.want
			if want == "" {
				want = tc.in
			}
			if want == "null" {
				if got != nil {
					t.Errorf("got %s, want nil", got)
				}
			} else if string(got) != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			removed := map[string]int{}
			for r, c := range n {
				if c > 0 {
					removed[ingest.ScrubReason(r).String()] = c
				}
			}
			if tc.removed == nil {
				tc.removed = map[string]int{}
			}
			if diff := cmp.Diff(tc.removed, removed); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
		})
	}
}

// Nothing to remove: the input comes back as it is, not a copy.
func TestScrubReturnsInputUnchanged(t *testing.T) {
	in := json.RawMessage(`{"path":"/p/123","ts":"2026-01-02T15:04:05Z"}`)
	got, _ := defaultScrubber(t).Scrub(in)
	if &got[0] != &in[0] {
		t.Error("Scrub copied properties it did not change")
	}
	s := defaultScrubber(t)
	if n := testing.AllocsPerRun(100, func() { s.Scrub(in) }); n != 0 {
		t.Errorf("Scrub allocated %v times for properties it kept", n)
	}
}

func TestScrubRules(t *testing.T) {
	if _, err := ingest.NewScrubber(ingest.ScrubRules{Patterns: []string{"emial"}}); err == nil || !strings.Contains(err.Error(), `"emial"`) {
		t.Errorf("unknown pattern: err %v", err)
	}
	if _, err := ingest.NewScrubber(ingest.ScrubRules{Properties: []string{"*"}}); err == nil {
		t.Error("empty name accepted")
	}
	// Only what is configured is removed.
	s, err := ingest.NewScrubber(ingest.ScrubRules{Patterns: []string{"card"}, Properties: []string{"secret*"}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Scrub(json.RawMessage(`{"email":"a@example.com","secretToken":"x","c":"4111-1111-1111-1111"}`))
	if string(got) != `{"email":"a@example.com"}` {
		t.Errorf("got %s", got)
	}
	var nilScrubber *ingest.Scrubber
	in := json.RawMessage(`{"email":"x"}`)
	if got, n := nilScrubber.Scrub(in); string(got) != string(in) || n.Total() != 0 {
		t.Errorf("nil scrubber changed %s to %s", in, got)
	}
}

// FuzzScrub: for any JSON object, the result is valid JSON, scrubbing it again
// changes nothing, and no e-mail address or denylisted name is left in it.
func FuzzScrub(f *testing.F) {
	for _, seed := range []string{
		`{"a":"b"}`, `{"email":"x","k":[1,{"phone":"y"}]}`, `{"q":"a@example.com"}`, `{"c":"4111 1111 1111 1111"}`,
		`{"p":"+44 20 7946 0958","ip":"::1"}`, `{"x":"\u0040\"\\","y":[[],{}],"z":-1.5e10}`, `{}`, `[1,"2001:db8::1"]`,
	} {
		f.Add([]byte(seed))
	}
	s := defaultScrubber(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if !json.Valid(in) {
			return
		}
		out, n := s.Scrub(in)
		if out == nil {
			if n.Total() == 0 {
				t.Fatalf("dropped %q without counting it", in)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Scrub(%q) = %q: not JSON", in, out)
		}
		again, m := s.Scrub(out)
		if m.Total() != 0 || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q → %q → %q (%v)", in, out, again, m)
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		walkJSON(v, func(key string, value any) {
			if str, ok := value.(string); ok && emailPattern.MatchString(str) {
				t.Fatalf("e-mail left in %q: %q", out, str)
			}
			switch key { // spellings that normalise to denylisted names
			case "email", "Email", "EMAIL", "e-mail", "userEmail", "user_email", "password", "Password":
				t.Fatalf("denylisted %q left in %q", key, out)
			}
		})
	})
}

// emailPattern is the scrubber's own definition of an e-mail address.
var emailPattern = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`)

func walkJSON(v any, fn func(key string, value any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			fn(k, e)
			walkJSON(e, fn)
		}
	case []any:
		for _, e := range x {
			fn("", e)
			walkJSON(e, fn)
		}
	}
}

func BenchmarkScrub(b *testing.B) {
	s := defaultScrubber(b)
	for _, bc := range []struct{ name, props string }{
		{"clean", `{"path":"/products/123","ref":"bench","price":19.99,"currency":"EUR","tags":["a","b"]}`},
		{"timestamps", `{"path":"/products/123","seen":"2026-01-02T15:04:05Z","at":"2026-01-02 15:04:05"}`},
		{"email", `{"path":"/products/123","q":"mail a@example.com","price":19.99}`},
	} {
		props := json.RawMessage(bc.props)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(props)))
			b.ReportAllocs()
			for b.Loop() {
				s.Scrub(props)
			}
		})
	}
}
