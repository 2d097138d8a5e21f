package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/liftlab/lift/web/auth"
)

func TestPasswords(t *testing.T) {
	h := auth.HashPassword("correct horse")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash format %q", h)
	}
	if h == auth.HashPassword("correct horse") {
		t.Error("two hashes of one password are equal: no salt")
	}
	if !auth.VerifyPassword(h, "correct horse") || auth.VerifyPassword(h, "correct horsE") {
		t.Error("verify accepts the wrong password or refuses the right one")
	}
	for _, bad := range []string{"", "$argon2id$", "$bcrypt$x$y$z$w", h[:len(h)-4] + "!!!!"} {
		if auth.VerifyPassword(bad, "correct horse") {
			t.Errorf("verify accepted malformed hash %q", bad)
		}
	}
}

func TestSecrets(t *testing.T) {
	c, s := auth.NewSecret(auth.ClientKey), auth.NewSecret(auth.ServerKey)
	if !strings.HasPrefix(c, "lift_ck_") || !strings.HasPrefix(s, "lift_sk_") || len(c) != 40 {
		t.Errorf("secrets %q %q", c, s)
	}
	if auth.NewSecret(auth.ClientKey) == c {
		t.Error("secrets repeat")
	}
	if _, err := auth.ParseKind("admin"); err == nil {
		t.Error("kind admin accepted")
	}
	if _, err := auth.ParseRole("root"); err == nil {
		t.Error("role root accepted")
	}
}

func TestCreateUserValidates(t *testing.T) {
	for _, tc := range []struct{ email, password, want string }{
		{"not-an-email", "long enough", "email"},
		{"a@example.com", "short", "password"},
	} {
		_, err := auth.CreateUser(context.Background(), nil, tc.email, auth.Viewer, tc.password, "t")
		if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
			t.Errorf("%s/%s: %v, want an error naming %s", tc.email, tc.password, err, tc.want)
		}
	}
}
