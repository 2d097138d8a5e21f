package typereg_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liftlab/lift/ingest/typereg"
	"github.com/liftlab/lift/internal/derrors"
)

const signupV1 = `{"type":"object","properties":{"plan":{"type":"string","enum":["free","pro"]},
 "seats":{"type":"integer"},"source":{"type":"object","properties":{"ref":{"type":"string"}}}},"required":["plan"]}`

func TestCompile(t *testing.T) {
	for _, tt := range []struct {
		name, schema, wantField string
	}{
		{"valid", signupV1, ""},
		{"not json", `{"type":`, "schema"},
		{"not an object schema", `{"type":"array"}`, "schema.type"},
		{"invalid keyword value", `{"type":"object","properties":{"a":{"type":"strin"}}}`, "schema"},
		{"external ref refused", `{"type":"object","properties":{"a":{"$ref":"file:///etc/passwd"}}}`, "schema"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := typereg.Compile(json.RawMessage(tt.schema))
			var v *derrors.ValidationError
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.wantField != "" && (!errors.As(err, &v) || v.Fields[0].Field != tt.wantField):
				t.Fatalf("got %v, want an error on %s", err, tt.wantField)
			}
		})
	}
}

func TestValidateProperties(t *testing.T) {
	s, err := typereg.Compile(json.RawMessage(signupV1))
	if err != nil {
		t.Fatal(err)
	}
	for props, want := range map[string]string{
		`{"plan":"pro","seats":3}`:    "",
		`{"seats":3}`:                 "missing property 'plan'",
		`{"plan":"gold"}`:             "at /plan",
		`{"plan":"free","seats":1.5}`: "at /seats",
	} {
		err := s.ValidateProperties(json.RawMessage(props))
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: got %v, want %q", props, err, want)
		}
	}
}

func TestBreaking(t *testing.T) {
	for _, tt := range []struct {
		name, next string
		want       []string // fields
	}{
		{"same", signupV1, nil},
		{"optional property added, enum widened, integer to number", `{"type":"object","properties":{"plan":{"type":"string","enum":["free","pro","team"]},
		 "seats":{"type":"number"},"source":{"type":"object","properties":{"ref":{"type":"string"}}},"coupon":{"type":"string"}},"required":["plan"]}`, nil},
		{"property removed, type changed, newly required, enum narrowed, nested removal",
			`{"type":"object","properties":{"plan":{"type":"string","enum":["pro"]},"seats":{"type":"string"},"source":{"type":"object","properties":{}}},"required":["plan","seats"]}`,
			[]string{"schema.required", "schema.properties.plan.enum", "schema.properties.seats.type", "schema.properties.source.properties.ref"}},
		{"additional properties forbidden", `{"type":"object","additionalProperties":false,"properties":{"plan":{"type":"string","enum":["free","pro"]},
		 "seats":{"type":"integer"},"source":{"type":"object","properties":{"ref":{"type":"string"}}}},"required":["plan"]}`,
			[]string{"schema.additionalProperties"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range typereg.Breaking(json.RawMessage(signupV1), json.RawMessage(tt.next)) {
				got = append(got, f.Field)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("breaking fields (-want +got):\n%s", diff)
			}
		})
	}
}
