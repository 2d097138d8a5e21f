package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"hash"
	"sync"
)

// PseudonymPrefix starts every pseudonymised user id.
const PseudonymPrefix = "lp_"

// pseudonymLen is the prefix and 128 bits in unpadded base32: enough that two users
// never share a pseudonym (a collision needs about 2^64 users).
const pseudonymLen = len(PseudonymPrefix) + 26

var pseudonymEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// MinPseudonymKeyLen is the shortest key NewPseudonymizer accepts: shorter keys could
// be guessed, and a guessed key turns pseudonyms back into ids by trying them.
const MinPseudonymKeyLen = 16

// Pseudonymizer replaces user ids with a keyed HMAC-SHA-256 of them, so lift stores
// and processes ids that nobody without the key can link back to a person, while
// every component still sees the same id for the same user. It is safe for
// concurrent use.
type Pseudonymizer struct {
	pool sync.Pool // of *pseudonymState
}

type pseudonymState struct {
	mac hash.Hash
	buf []byte
	sum []byte
}

// NewPseudonymizer returns a pseudonymizer with key; it returns an error for a key
// shorter than MinPseudonymKeyLen bytes.
func NewPseudonymizer(key []byte) (*Pseudonymizer, error) {
	if len(key) < MinPseudonymKeyLen {
		return nil, errors.New("pseudonymisation key must be at least 16 bytes")
	}
	key = append([]byte(nil), key...)
	p := &Pseudonymizer{}
	p.pool.New = func() any {
		return &pseudonymState{mac: hmac.New(sha256.New, key), sum: make([]byte, 0, sha256.Size)}
	}
	return p, nil
}

// Pseudonymize returns the pseudonym of id: "lp_" and 26 base32 characters. It is
// idempotent (a pseudonym maps to itself), so every stage may apply it: the api at
// the edge, the consumers to events that backends published to RabbitMQ, erasure and
// export to ids an operator passes either way. A nil Pseudonymizer returns id.
func (p *Pseudonymizer) Pseudonymize(id string) string {
	if p == nil || IsPseudonym(id) {
		return id
	}
	st := p.pool.Get().(*pseudonymState)
	st.mac.Reset()
	st.buf = append(st.buf[:0], id...)
	st.mac.Write(st.buf)
	st.sum = st.mac.Sum(st.sum[:0])
	out := make([]byte, pseudonymLen)
	copy(out, PseudonymPrefix)
	pseudonymEncoding.Encode(out[len(PseudonymPrefix):], st.sum[:16])
	p.pool.Put(st)
	return string(out)
}

// IsPseudonym reports whether id has the form of a pseudonym.
func IsPseudonym(id string) bool {
	if len(id) != pseudonymLen || id[:len(PseudonymPrefix)] != PseudonymPrefix {
		return false
	}
	for i := len(PseudonymPrefix); i < len(id); i++ {
		if c := id[i]; (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}
