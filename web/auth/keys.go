// Package auth holds lift's credentials: API keys for programs and user accounts for
// the dashboard.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/liftlab/lift/internal/derrors"
)

// KeyKind says what an API key may do.
type KeyKind string

const (
	// ClientKey may only decide and send events: it is meant to ship inside
	// browsers and apps, where anyone can read it.
	ClientKey KeyKind = "client"
	// ServerKey may also manage configuration through /api/v1.
	ServerKey KeyKind = "server"
)

// Key describes an API key; the secret itself is never stored.
type Key struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Kind      KeyKind    `json:"kind"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// AllowedOrigins are the browser origins the key may be used from (CORS); empty
	// means any. See AllowsOrigin.
	AllowedOrigins []string `json:"allowed_origins"`
	// ExpiresAt is when a rotated key stops working; nil: until revoked.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// KeyHash is the SHA-256 of a key's secret. Secrets carry 160 random bits, so a fast
// hash is safe and lets every request be checked in memory.
type KeyHash [sha256.Size]byte

// HashKey returns the hash stored for secret.
func HashKey(secret string) KeyHash { return sha256.Sum256([]byte(secret)) }

// ParseKind checks a kind given on the command line or in an API request.
func ParseKind(s string) (KeyKind, error) {
	switch k := KeyKind(s); k {
	case ClientKey, ServerKey:
		return k, nil
	}
	return "", fmt.Errorf("kind must be %q or %q, got %q", ClientKey, ServerKey, s)
}

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret makes a new random key secret. The kind is visible in the secret
// ("lift_ck_…" or "lift_sk_…") so a leaked server key is recognisable in a scan.
func NewSecret(kind KeyKind) string {
	b := make([]byte, 20)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	tag := "ck"
	if kind == ServerKey {
		tag = "sk"
	}
	return "lift_" + tag + "_" + strings.ToLower(keyEncoding.EncodeToString(b))
}

// Prefix is the part of a secret that may be shown in lists to identify it.
func Prefix(secret string) string {
	if len(secret) > 12 {
		return secret[:12]
	}
	return secret
}

// KeyStore persists API keys. Every change is recorded in the audit log.
type KeyStore interface {
	// CreateKey stores a key by hash.
	CreateKey(ctx context.Context, name string, kind KeyKind, hash KeyHash, prefix, actor string, origins []string) (Key, error)
	// SetOrigins replaces a key's allowed origins; derrors.ErrNotFound if no active key has
	// that id.
	SetOrigins(ctx context.Context, id int64, origins []string, actor string) (Key, error)
	// RotateKey stores a successor of key id (its name, kind and origins, a new
	// secret) and makes the old key expire at expiresAt. It returns derrors.ErrNotFound if no
	// active key has that id and derrors.ErrConflict if it was rotated already.
	RotateKey(ctx context.Context, id int64, hash KeyHash, prefix string, expiresAt time.Time, actor string) (Key, error)
	// RevokeKey returns derrors.ErrNotFound if no active key has that id.
	RevokeKey(ctx context.Context, id int64, actor string) error
	// ListKeys returns every key, revoked ones included.
	ListKeys(ctx context.Context) ([]Key, error)
	// ActiveKeys returns the keys that are not revoked, by hash.
	ActiveKeys(ctx context.Context) (map[KeyHash]Key, error)
}

// CreateKey makes a key and stores it; the secret is returned once and never again.
// origins, if any, limit the browser origins it may be used from (checked with
// ParseOrigins first).
func CreateKey(ctx context.Context, store KeyStore, name string, kind KeyKind, actor string, origins ...string) (string, Key, error) {
	secret := NewSecret(kind)
	if name == "" {
		name = string(kind) + " key"
	}
	k, err := store.CreateKey(ctx, name, kind, HashKey(secret), Prefix(secret), actor, origins)
	return secret, k, err
}

// MaxRotationGrace bounds how long a rotated key keeps working beside its successor.
const MaxRotationGrace = 30 * 24 * time.Hour

// RotateKey replaces key id without downtime: the new key works at once, the old one
// until grace has passed, so clients can be moved over in between. The new secret is
// returned once. grace must lie in (0, MaxRotationGrace]; derrors.ErrNotFound if no active
// key has that id.
func RotateKey(ctx context.Context, store KeyStore, id int64, grace time.Duration, actor string) (string, Key, error) {
	if grace <= 0 || grace > MaxRotationGrace {
		return "", Key{}, fmt.Errorf("grace must be between 1s and %s, got %s", MaxRotationGrace, grace)
	}
	keys, err := store.ListKeys(ctx)
	if err != nil {
		return "", Key{}, err
	}
	i := slices.IndexFunc(keys, func(k Key) bool { return k.ID == id && k.RevokedAt == nil })
	if i < 0 {
		return "", Key{}, derrors.ErrNotFound
	}
	secret := NewSecret(keys[i].Kind)
	k, err := store.RotateKey(ctx, id, HashKey(secret), Prefix(secret), time.Now().Add(grace), actor)
	return secret, k, err
}

// ParseOrigins checks and normalises allowed origins: each is "*" (any), or a
// scheme, host and optional port such as https://shop.example or
// http://localhost:3000, where the host may start with "*." for any subdomain.
func ParseOrigins(origins []string) ([]string, error) {
	out := make([]string, 0, len(origins))
	for i, o := range origins {
		o = strings.ToLower(strings.TrimSpace(o))
		if o == "*" {
			out = append(out, o)
			continue
		}
		scheme, host, ok := strings.Cut(o, "://")
		if !ok || scheme != "http" && scheme != "https" || host == "" || strings.ContainsAny(host, "/?#@ ") ||
			strings.Contains(strings.TrimPrefix(host, "*."), "*") {
			return nil, fmt.Errorf("allowed_origins[%d]: %q is not an origin such as https://shop.example (scheme, host, optional port; *. for subdomains)", i, origins[i])
		}
		out = append(out, scheme+"://"+host)
	}
	return out, nil
}

// AllowsOrigin reports whether a browser page at origin may use the key: any origin
// when the key has no list, else an exact match, "*", or a "*." entry matching a
// subdomain.
func (k Key) AllowsOrigin(origin string) bool {
	if len(k.AllowedOrigins) == 0 {
		return true
	}
	origin = strings.ToLower(origin)
	for _, a := range k.AllowedOrigins {
		if a == "*" || a == origin {
			return true
		}
		if scheme, host, ok := strings.Cut(a, "://*."); ok {
			if os, oh, ok := strings.Cut(origin, "://"); ok && os == scheme && strings.HasSuffix(oh, "."+host) {
				return true
			}
		}
	}
	return false
}

// KeyRing answers "which key is this?" from memory; Reload refreshes it from the store
// (on every configuration notification), so revocations take effect within a second
// and requests never wait on the database.
type KeyRing struct {
	store KeyStore
	keys  atomic.Pointer[map[KeyHash]Key]
}

// NewKeyRing returns an empty ring; call Reload before serving.
func NewKeyRing(store KeyStore) *KeyRing {
	r := &KeyRing{store: store}
	empty := map[KeyHash]Key{}
	r.keys.Store(&empty)
	return r
}

// Reload reads the active keys. On error the previous set stays in use.
func (r *KeyRing) Reload(ctx context.Context) error {
	keys, err := r.store.ActiveKeys(ctx)
	if err != nil {
		return fmt.Errorf("auth: reload keys: %w", err)
	}
	r.keys.Store(&keys)
	return nil
}

// Lookup finds the active key with this secret. A rotated key past its expiry is
// not found, even before the next reload drops it.
func (r *KeyRing) Lookup(secret string) (Key, bool) {
	k, ok := (*r.keys.Load())[HashKey(secret)]
	if ok && k.ExpiresAt != nil && !time.Now().Before(*k.ExpiresAt) {
		return Key{}, false
	}
	return k, ok
}
