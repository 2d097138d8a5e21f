package finite_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/liftlab/lift/internal/finite"
)

// FuzzFloat: any float64 encodes as valid JSON: null when it is not finite, else
// exactly what encoding/json writes, which reads back as the same number.
func FuzzFloat(f *testing.F) {
	for _, x := range []float64{math.Inf(1), math.Inf(-1), math.NaN(), 1e308, 5e-324, math.Copysign(0, -1), 3e15, 1e15, 999.995, math.MaxInt64, 1e21, 1e-7} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		got, err := json.Marshal(struct {
			V finite.Float  `json:"v"`
			P *finite.Float `json:"p"`
			S []finite.Float
		}{finite.Float(x), finite.Ptr(&x), finite.Slice([]float64{x})})
		if err != nil || !json.Valid(got) {
			t.Fatalf("%v: %s, %v", x, got, err)
		}
		var back struct {
			V, P *float64
			S    []*float64
		}
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if !finite.All(x) {
			if back.V != nil || back.P != nil || back.S[0] != nil {
				t.Fatalf("%v: %s, want nulls", x, got)
			}
			return
		}
		if want, _ := json.Marshal(x); string(got) != `{"v":`+string(want)+`,"p":`+string(want)+`,"S":[`+string(want)+`]}` {
			t.Fatalf("%v: %s, want encoding/json's %s", x, got, want)
		}
		if *back.V != x || *back.P != x || *back.S[0] != x {
			t.Fatalf("%v read back as %v", x, *back.V)
		}
	})
}

func TestNil(t *testing.T) {
	if finite.Ptr(nil) != nil || finite.Slice(nil) != nil {
		t.Error("nil does not stay nil")
	}
	if !finite.All() || !finite.All(1, -0, 5e-324) || finite.All(1, math.NaN()) || finite.All(math.Inf(-1)) {
		t.Error("All")
	}
}
