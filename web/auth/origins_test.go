package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/web/auth"
)

func TestParseOrigins(t *testing.T) {
	got, err := auth.ParseOrigins([]string{"https://Shop.Example", " http://localhost:3000 ", "*", "https://*.shop.example"})
	if err != nil || strings.Join(got, " ") != "https://shop.example http://localhost:3000 * https://*.shop.example" {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"shop.example", "ftp://shop.example", "https://shop.example/", "https://a.*.example", "https://", "https://user@shop.example"} {
		if _, err := auth.ParseOrigins([]string{"https://ok.example", bad}); err == nil || !strings.Contains(err.Error(), "allowed_origins[1]") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestAllowsOrigin(t *testing.T) {
	k := auth.Key{AllowedOrigins: []string{"https://shop.example", "https://*.brand.example"}}
	for origin, want := range map[string]bool{
		"https://shop.example": true, "HTTPS://SHOP.EXAMPLE": true, "http://shop.example": false,
		"https://evil.example": false, "https://eu.brand.example": true, "https://brand.example": false,
		"https://evilbrand.example": false, "https://shop.example:8443": false,
	} {
		if got := k.AllowsOrigin(origin); got != want {
			t.Errorf("AllowsOrigin(%q) = %v", origin, got)
		}
	}
	if !(auth.Key{}).AllowsOrigin("https://any.example") || !(auth.Key{AllowedOrigins: []string{"*"}}).AllowsOrigin("https://any.example") {
		t.Error("an empty list or * refuses an origin")
	}
}

type ringStore struct {
	auth.KeyStore
	keys map[auth.KeyHash]auth.Key
}

func (r ringStore) ActiveKeys(context.Context) (map[auth.KeyHash]auth.Key, error) { return r.keys, nil }

// A rotated key stops working at its expiry, without waiting for a reload.
func TestKeyRingExpiry(t *testing.T) {
	soon := time.Now().Add(50 * time.Millisecond)
	ring := auth.NewKeyRing(ringStore{keys: map[auth.KeyHash]auth.Key{
		auth.HashKey("old"): {ID: 1, ExpiresAt: &soon}, auth.HashKey("new"): {ID: 2},
	}})
	if err := ring.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := ring.Lookup("old"); !ok {
		t.Fatal("old key refused before its expiry")
	}
	time.Sleep(60 * time.Millisecond)
	if _, ok := ring.Lookup("old"); ok {
		t.Error("old key accepted after its expiry")
	}
	if _, ok := ring.Lookup("new"); !ok {
		t.Error("new key refused")
	}
	if _, _, err := auth.RotateKey(context.Background(), nil, 1, 0, "x"); err == nil {
		t.Error("zero grace accepted")
	}
}
