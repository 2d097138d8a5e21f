package gdpr

import (
	"context"
	"fmt"
	"slices"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/internal/derrors"
)

// Link is an anonymous id that a user's $identify events link to them (the visitor's
// history before signing in), with where those events came from.
type Link struct {
	ID string `json:"id"`
	// Sources are the ingest.Source of the $identify events making the link:
	// "server", "amqp", "client" or "unknown" (stored before lift recorded sources).
	Sources []string `json:"sources"`
}

// Trusted reports whether a server key or a backend publishing to RabbitMQ made the
// link. Client keys are public: with one, anyone can link any id to any other, so
// export and erasure follow such a link only when an operator confirms it.
func (l Link) Trusted() bool {
	return slices.ContainsFunc(l.Sources, func(s string) bool { return ingest.ParseSource(s).Trusted() })
}

// resolution is whose data an erasure or export covers.
type resolution struct {
	// ids: as given, the pseudonym, trusted links and the links the operator
	// confirmed.
	ids []string
	// confirmed are the linked ids the operator confirmed, as stored.
	confirmed []string
	// unconfirmed are the links not followed.
	unconfirmed []Link
}

// resolve follows the user's trusted links and those of include, the linked ids the
// operator confirmed (as listed, or as the application knows them). It returns a
// derrors.BadRequest naming include when one of them is not linked to the user.
func (s *Service) resolve(ctx context.Context, ids, include []string) (resolution, error) {
	links, err := s.Events.LinkedIDs(ctx, ids)
	if err != nil {
		return resolution{}, err
	}
	r := resolution{ids: ids}
	confirmed := map[string]bool{}
	for _, x := range include {
		i := slices.IndexFunc(links, func(l Link) bool { return l.ID == x || l.ID == s.Pseudonymizer.Pseudonymize(x) })
		if i < 0 {
			return resolution{}, derrors.BadRequest("include", fmt.Sprintf("%q is not an id linked to the user", x))
		}
		confirmed[links[i].ID] = true
		r.ids = union(r.ids, []string{x}) // as the application knows it: data from before pseudonymisation
	}
	for _, l := range links {
		switch {
		case slices.Contains(ids, l.ID):
		case l.Trusted():
			r.ids = union(r.ids, []string{l.ID})
		case confirmed[l.ID]:
			r.ids = union(r.ids, []string{l.ID})
			r.confirmed = append(r.confirmed, l.ID)
		default:
			r.unconfirmed = append(r.unconfirmed, l)
		}
	}
	return r, nil
}
