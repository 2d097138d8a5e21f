package auth

import (
	"context"
	"time"
)

// SessionStore persists dashboard sessions by the hash of their token.
type SessionStore interface {
	// CreateSession stores a session for the user until expires.
	CreateSession(ctx context.Context, hash KeyHash, userID int64, expires time.Time) error
	// SessionUser returns the user of an unexpired session whose account is active,
	// or derrors.ErrNotFound.
	SessionUser(ctx context.Context, hash KeyHash) (User, error)
	// DeleteSession ends a session; ending an unknown one is not an error.
	DeleteSession(ctx context.Context, hash KeyHash) error
}

// UserLister lists dashboard accounts for the users page.
type UserLister interface {
	// ListUsers returns every active user ordered by e-mail.
	ListUsers(ctx context.Context) ([]User, error)
}

// Allows reports whether a user with role r may do what needs role need: roles are
// ordered viewer < editor < admin.
func (r Role) Allows(need Role) bool {
	rank := map[Role]int{Viewer: 1, Editor: 2, Admin: 3}
	return rank[r] >= rank[need] && rank[need] > 0
}
