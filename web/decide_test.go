package web_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/web"
)

func TestParseDecideRequest(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantField string // "" = valid; "malformed" = not JSON
	}{
		{"valid", `{"user_id":"u1","attributes":{"country":"US"},"keys":["a"],"track":false}`, ""},
		{"unknown fields are ignored", `{"user_id":"u1","extra":1}`, ""},
		{"missing user_id", `{"attributes":{}}`, "user_id"},
		{"empty user_id", `{"user_id":""}`, "user_id"},
		{"numeric user_id", `{"user_id":7}`, "user_id"},
		{"attributes not an object", `{"user_id":"u","attributes":[1]}`, "attributes"},
		{"keys not strings", `{"user_id":"u","keys":[1]}`, "keys"},
		{"long user_id", `{"user_id":"` + strings.Repeat("x", 300) + `"}`, "user_id"},
		{"truncated", `{"user_id":"u1"`, "malformed"},
		{"not json", `user_id=u1`, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := web.ParseDecideRequest([]byte(tt.body))
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.wantField == "malformed" && !errors.Is(err, experiments.ErrMalformed):
				t.Fatalf("got %v, want ErrMalformed", err)
			case tt.wantField != "" && tt.wantField != "malformed" && (err == nil || !strings.HasPrefix(err.Error(), "invalid document: "+tt.wantField+":")):
				t.Fatalf("got %v, want an error naming %s", err, tt.wantField)
			}
		})
	}
}

// FuzzParseDecideRequest: any body gets a request or an error, never a panic, and
// every accepted request has a user id within bounds.
func FuzzParseDecideRequest(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"u1","attributes":{"country":"US","n":[1,2,{"a":null}]},"keys":["a","b"],"track":true}`,
		`{"user_id":""}`, `{}`, `[]`, `null`, `{"user_id":"\ud800"}`, `{"attributes":{"a":1e400}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := web.ParseDecideRequest(body)
		if err == nil && (r.UserID == "" || len(r.UserID) > 256) {
			t.Fatalf("accepted user id %q", r.UserID)
		}
	})
}
