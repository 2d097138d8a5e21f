package ingest_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liftlab/lift/ingest"
)

// propertyCases are properties whose columns are easy to get wrong: nested keys of
// the same name, duplicates, arrays of every kind of element, escapes, numbers in
// every notation, and what encoding/json refuses.
var propertyCases = []string{
	`{}`,
	`{"a":{"path":"x"},"path":"y"}`,
	`{"path":"y","a":{"path":"x"}}`,
	`{"plan":"pro","price":12.5,"gift":true,"coupon":null,"n":"12"}`,
	`{"tags":["a","b",3,true,null,["c"],{"d":1}],"empty":[],"obj":{}}`,
	`{"a":1,"a":"two"}`,
	`{"tags":["x"],"tags":[2]}`,
	`{"tags":["x"],"other":1,"tags":"plain"}`,
	`{"k\u00e9y":"\u263a","esc":"a\"b\\c\/d\n","emoji":"\ud83d\ude00","lone":"\ud800x"}`,
	`{"n1":-0,"n2":1e5,"n3":1.5E-3,"n4":123456789.123456789,"n5":9007199254740993,"n6":0.1}`,
	`{"big":1e400}`,
	`{"deep":{"a":[1,{"b":1e999}]}}`,
	` { "spaced" : [ 1 , "a" ] , "x" : { } } `,
	`{"bad":"` + "\x01" + `"}`,
	`{"utf8":"` + "\xff" + `"}`,
	`[1,2]`,
	`{"a":1}x`,
	`"text"`,
	`null`,
}

func TestExtractProperties(t *testing.T) {
	for _, props := range propertyCases {
		t.Run(props, func(t *testing.T) { checkExtract(t, []byte(props)) })
	}
	got := ingest.ExtractProperties([]byte(`{"a":{"path":"x"},"path":"y","tags":["t",2],"a":[true]}`))
	want := ingest.PropertyColumns{
		Keys:    []string{"path", "tags", "a", "tags", "tags", "a"},
		Types:   []ingest.PropertyType{ingest.PropString, ingest.PropArray, ingest.PropArray, ingest.PropItemString, ingest.PropItemNumber, ingest.PropItemBoolean},
		Strings: []string{"y", "", "", "t", "", ""},
		Numbers: []float64{0, 0, 0, 0, 2, 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("columns (-want +got):\n%s", diff)
	}
}

func FuzzExtractProperties(f *testing.F) {
	for _, p := range propertyCases {
		f.Add([]byte(p))
	}
	f.Fuzz(checkExtract)
}

// checkExtract compares ExtractProperties with what encoding/json decodes into a map,
// which is what the segment engine evaluates conditions on.
func checkExtract(t *testing.T, props []byte) {
	got := ingest.ExtractProperties(props)
	n := len(got.Keys)
	if len(got.Types) != n || len(got.Strings) != n || len(got.Numbers) != n {
		t.Fatalf("%q: columns of different lengths: %+v", props, got)
	}
	var m map[string]any
	if json.Unmarshal(props, &m) != nil {
		m = nil
	}
	type entry struct {
		Type  ingest.PropertyType
		Str   string
		Num   float64
		Items []entry
	}
	kind := func(v any) entry {
		switch x := v.(type) {
		case nil:
			return entry{Type: ingest.PropNull}
		case string:
			return entry{Type: ingest.PropString, Str: x}
		case float64:
			return entry{Type: ingest.PropNumber, Num: x}
		case bool:
			if x {
				return entry{Type: ingest.PropBoolean, Num: 1}
			}
			return entry{Type: ingest.PropBoolean}
		case []any:
			return entry{Type: ingest.PropArray}
		}
		return entry{Type: ingest.PropObject}
	}
	want := map[string]entry{}
	for k, v := range m {
		e := kind(v)
		if a, ok := v.([]any); ok {
			for _, x := range a {
				if it := kind(x); it.Type != ingest.PropArray && it.Type != ingest.PropObject {
					it.Type += ingest.PropItemNull
					e.Items = append(e.Items, it)
				}
			}
		}
		want[k] = e
	}
	have := map[string]entry{}
	top := true
	for i, k := range got.Keys {
		e := entry{Type: got.Types[i], Str: got.Strings[i], Num: got.Numbers[i]}
		if e.Type >= ingest.PropItemNull {
			top = false
			p, ok := have[k]
			if !ok || p.Type != ingest.PropArray {
				t.Fatalf("%q: item %d of %q follows no array of that key", props, i, k)
			}
			p.Items = append(p.Items, e)
			have[k] = p
			continue
		}
		if !top {
			t.Fatalf("%q: top-level key %q after items", props, k)
		}
		if _, dup := have[k]; dup {
			t.Fatalf("%q: key %q twice", props, k)
		}
		have[k] = e
	}
	if diff := cmp.Diff(want, have, cmp.Comparer(func(a, b float64) bool {
		return math.Float64bits(a) == math.Float64bits(b)
	})); diff != "" {
		t.Fatalf("%q (-encoding/json +ExtractProperties):\n%s", props, diff)
	}
}
