package web_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/liftlab/lift/internal/derrors"
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
		{"keys up to the cap", `{"user_id":"u","keys":["a"` + strings.Repeat(`,"a"`, web.MaxDecideKeys-1) + `]}`, ""},
		{"keys over the cap", `{"user_id":"u","keys":["a"` + strings.Repeat(`,"a"`, web.MaxDecideKeys) + `]}`, "keys"},
		{"truncated", `{"user_id":"u1"`, "malformed"},
		{"not json", `user_id=u1`, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := web.ParseDecideRequest([]byte(tt.body))
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.wantField == "malformed" && !errors.Is(err, derrors.ErrMalformed):
				t.Fatalf("got %v, want ErrMalformed", err)
			case tt.wantField != "" && tt.wantField != "malformed" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantField+":")):
				t.Fatalf("got %v, want an error naming %s", err, tt.wantField)
			}
		})
	}
}

// TestParseDecideRequestKeys: keys come back once each, in the order first named.
func TestParseDecideRequestKeys(t *testing.T) {
	for body, want := range map[string]string{
		`{"user_id":"u","keys":["b","a","b","c","a"]}`: "b,a,c",
		`{"user_id":"u","keys":["k0","k1","k2","k3","k4","k5","k6","k7","k8","k9","k10","k11","k12","k13","k14","k15","k16","k0","k16","k17"]}`: "k0,k1,k2,k3,k4,k5,k6,k7,k8,k9,k10,k11,k12,k13,k14,k15,k16,k17",
		`{"user_id":"u","keys":[]}`: "",
		`{"user_id":"u"}`:           "",
	} {
		r, err := web.ParseDecideRequest([]byte(body))
		if err != nil || strings.Join(r.Keys, ",") != want {
			t.Errorf("%s: keys %q, %v; want %s", body, r.Keys, err, want)
		}
	}
}

// FuzzParseDecideRequest: any body gets a request or an error, never a panic, and
// every accepted request has a user id within bounds and keys within the cap, each
// once.
func FuzzParseDecideRequest(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"u1","attributes":{"country":"US","n":[1,2,{"a":null}]},"keys":["a","b"],"track":true}`,
		`{"user_id":""}`, `{}`, `[]`, `null`, `{"user_id":"\ud800"}`, `{"attributes":{"a":1e400}}`,
		`{"user_id":"u","keys":["a","b","a"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := web.ParseDecideRequest(body)
		if err == nil && (r.UserID == "" || len(r.UserID) > 256) {
			t.Fatalf("accepted user id %q", r.UserID)
		}
		if err == nil && (len(r.Keys) > web.MaxDecideKeys || len(slices.Compact(slices.Sorted(slices.Values(r.Keys)))) != len(r.Keys)) {
			t.Fatalf("accepted keys %q", r.Keys)
		}
	})
}
