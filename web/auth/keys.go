// Package auth holds lift's credentials: API keys for programs and user accounts for
// the dashboard.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
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

// ErrNotFound means no such key or user exists.
var ErrNotFound = errors.New("not found")

// ErrConflict means a user with that e-mail exists.
var ErrConflict = errors.New("conflict")

// Key describes an API key; the secret itself is never stored.
type Key struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Kind      KeyKind    `json:"kind"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
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

// KeyStore persists API keys.
type KeyStore interface {
	// CreateKey stores a key by hash and records it in the audit log.
	CreateKey(ctx context.Context, name string, kind KeyKind, hash KeyHash, prefix, actor string) (Key, error)
	// RevokeKey returns ErrNotFound if no active key has that id.
	RevokeKey(ctx context.Context, id int64, actor string) error
	// ListKeys returns every key, revoked ones included.
	ListKeys(ctx context.Context) ([]Key, error)
	// ActiveKeys returns the keys that are not revoked, by hash.
	ActiveKeys(ctx context.Context) (map[KeyHash]Key, error)
}

// CreateKey makes a key and stores it; the secret is returned once and never again.
func CreateKey(ctx context.Context, store KeyStore, name string, kind KeyKind, actor string) (string, Key, error) {
	secret := NewSecret(kind)
	if name == "" {
		name = string(kind) + " key"
	}
	k, err := store.CreateKey(ctx, name, kind, HashKey(secret), Prefix(secret), actor)
	return secret, k, err
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

// Lookup finds the active key with this secret.
func (r *KeyRing) Lookup(secret string) (Key, bool) {
	k, ok := (*r.keys.Load())[HashKey(secret)]
	return k, ok
}
