// Package feeds turns the configuration (experiment, segment, feature and recommender
// documents) into what the worker role's engines run on: the bandit updater's source
// (bandit.Source and bandit.WinnerSource), the segment engine's definitions, and the
// recommender trainer's list. cmd/lift wires them to the stores; the engines
// themselves live in bandit, segments and experiments/recommend
// (docs/architecture.md).
package feeds

import (
	"context"
	"encoding/json"

	"github.com/liftlab/lift/experiments"
)

// Config reads and changes configuration documents (experiments.Store has both).
type Config interface {
	// List returns the documents of a kind ordered by key.
	List(ctx context.Context, kind experiments.Kind) ([]json.RawMessage, error)
	// Update replaces a document with what change makes of it, through the audit log.
	Update(ctx context.Context, kind experiments.Kind, key, action, actor string,
		change func(before json.RawMessage) (json.RawMessage, error)) (json.RawMessage, error)
}
