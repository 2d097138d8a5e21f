package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// Role is what a dashboard user may do.
type Role string

// Roles, from least to most privileged.
const (
	Viewer Role = "viewer"
	Editor Role = "editor"
	Admin  Role = "admin"
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Viewer, Editor, Admin:
		return r, nil
	}
	return "", fmt.Errorf("role must be admin, editor or viewer, got %q", s)
}

// User is a dashboard account.
type User struct {
	ID           int64     `json:"id"`
	Email        string    `json:"email"`
	Role         Role      `json:"role"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
}

// UserStore persists users.
type UserStore interface {
	// CreateUser returns derrors.ErrConflict if the e-mail is taken.
	CreateUser(ctx context.Context, email string, role Role, passwordHash, actor string) (User, error)
	// UserByEmail returns derrors.ErrNotFound if there is no such user.
	UserByEmail(ctx context.Context, email string) (User, error)
}

// MinPasswordLength follows NIST SP 800-63B for memorised secrets.
const MinPasswordLength = 8

// CreateUser validates and stores a new user with a hashed password.
func CreateUser(ctx context.Context, store UserStore, email string, role Role, password, actor string) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return User{}, fmt.Errorf("email: %q is not an e-mail address", email)
	}
	if len(password) < MinPasswordLength {
		return User{}, fmt.Errorf("password: must be at least %d characters", MinPasswordLength)
	}
	return store.CreateUser(ctx, email, role, HashPassword(password), actor)
}

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns an argon2id hash in the PHC string format, salted.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	sum := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, enc.EncodeToString(salt), enc.EncodeToString(sum))
}

// VerifyPassword reports whether password matches a hash made by HashPassword,
// honouring the parameters recorded in the hash.
func VerifyPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
