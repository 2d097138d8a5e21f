package gdpr

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"sync"
)

// SubjectPrefix starts every subject.
const SubjectPrefix = "sub_"

var subjectEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Subjects names users in what lift keeps once it has forgotten them (finished
// erasure jobs) and in its audit log: "sub_" and the first 128 bits of
// HMAC-SHA-256(secret, id) in base32. Without the installation's secret nobody can
// tell whose subject it is by trying ids, as one could with a plain digest of an
// e-mail address, and it is not the pseudonym the user's data was stored under.
// (ingest.Pseudonymizer computes the same kind of HMAC, but maps pseudonyms to
// themselves, which a subject must not.) It is safe for concurrent use.
type Subjects struct {
	// Key returns the secret, at least 32 bytes; gdpr/pgstore keeps one per
	// installation in Postgres. It is read once, on first use.
	Key func(ctx context.Context) ([]byte, error)

	mu  sync.Mutex
	key []byte
}

// Of returns the subject of id.
func (s *Subjects) Of(ctx context.Context, id string) (string, error) {
	key, err := s.secret(ctx)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	return SubjectPrefix + subjectEncoding.EncodeToString(mac.Sum(nil)[:16]), nil
}

// All returns the subject of every id, by id.
func (s *Subjects) All(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	for _, id := range ids {
		sub, err := s.Of(ctx, id)
		if err != nil {
			return nil, err
		}
		out[id] = sub
	}
	return out, nil
}

func (s *Subjects) secret(ctx context.Context) ([]byte, error) {
	if s == nil || s.Key == nil {
		return nil, errors.New("gdpr: no secret for subjects")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	key, err := s.Key(ctx)
	if err != nil {
		return nil, err
	}
	if len(key) < 32 {
		return nil, errors.New("gdpr: the secret for subjects is shorter than 32 bytes")
	}
	s.key = key
	return key, nil
}
