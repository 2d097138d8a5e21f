package recommend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/liftlab/lift/experiments"
)

// Spec is what training reads from a recommender document.
type Spec struct {
	Key          string
	EventTypes   []string
	ItemProperty string
	Weights      map[string]float64
	HalfLife     time.Duration
	History      time.Duration
	RetrainEvery time.Duration
	Neighbours   int
}

// SpecOf returns the training spec of a recommender document (normalised here).
func SpecOf(r experiments.Recommender) Spec {
	r.Normalize()
	return Spec{Key: r.Key, EventTypes: r.EventTypes, ItemProperty: r.ItemProperty, Weights: r.Weights,
		HalfLife:     experiments.Duration(r.HalfLife, experiments.DefaultHalfLife),
		History:      experiments.Duration(r.History, experiments.DefaultHistory),
		RetrainEvery: experiments.Duration(r.RetrainEvery, experiments.DefaultRetrainEvery),
		Neighbours:   r.Neighbours}
}

// Source reads training data (recommend/chstore reads ClickHouse events).
type Source interface {
	// Interactions calls add with each user's weight per item as of now: over the
	// user's events of the spec's types since now − History, each event's type weight
	// halved for every HalfLife of age. The calls for one user are consecutive.
	Interactions(ctx context.Context, s Spec, now time.Time, add func(user, item string, weight float64)) error
	// Popular returns the items' summed type weights over the day before now.
	Popular(ctx context.Context, s Spec, now time.Time) ([]ItemWeight, error)
}

// Store keeps models and training requests (recommend/pgstore).
type Store interface {
	// Save stores a model as the recommender's next version and returns it.
	Save(ctx context.Context, recommender string, m *Model) (version int64, err error)
	// LastTrained returns when each recommender's newest model was trained.
	LastTrained(ctx context.Context) (map[string]time.Time, error)
	// TrainRequests returns the recommenders whose training was asked for, and when.
	TrainRequests(ctx context.Context) (map[string]time.Time, error)
	// DoneRequest removes a recommender's request if it was made at or before asOf.
	DoneRequest(ctx context.Context, recommender string, asOf time.Time) error
}

// Trainer trains every recommender on its schedule (every RetrainEvery after its
// last model) and when asked to. Run it in one process at a time (a leader).
type Trainer struct {
	// Recommenders lists what to train.
	Recommenders func(ctx context.Context) ([]Spec, error)
	Source       Source
	Store        Store
	Log          *slog.Logger
	// Poll is how often the trainer looks for due work (default 2 s).
	Poll time.Duration
	// Params tune training (Neighbours comes from each spec).
	Params Params
	// Observe, if set, is told about every training: its model or its error.
	Observe func(recommender string, m *Model, err error)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Run trains what is due until ctx ends.
func (t *Trainer) Run(ctx context.Context) {
	poll := t.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	failed := map[string]time.Time{} // back off a recommender whose training failed
	for {
		if err := t.round(ctx, failed); err != nil && ctx.Err() == nil {
			t.Log.Warn("recommender training round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(poll):
		}
	}
}

func (t *Trainer) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// round trains every recommender that is due once.
func (t *Trainer) round(ctx context.Context, failed map[string]time.Time) error {
	specs, err := t.Recommenders(ctx)
	if err != nil {
		return err
	}
	last, err := t.Store.LastTrained(ctx)
	if err != nil {
		return err
	}
	requests, err := t.Store.TrainRequests(ctx)
	if err != nil {
		return err
	}
	for _, s := range specs {
		asked, requested := requests[s.Key]
		trained, ok := last[s.Key]
		now := t.now()
		due := requested || !ok || now.Sub(trained) >= s.RetrainEvery
		if !due || now.Before(failed[s.Key]) && !requested {
			continue
		}
		m, err := t.Train(ctx, s)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed[s.Key] = now.Add(time.Minute)
			if errors.Is(err, ErrNoData) {
				t.Log.Info("no events to train a recommender on yet; trying again in a minute", "recommender", s.Key)
			} else {
				t.Log.Error("training a recommender failed; retrying in a minute", "recommender", s.Key, "err", err)
			}
			if requested {
				_ = t.Store.DoneRequest(ctx, s.Key, asked)
			}
			continue
		}
		delete(failed, s.Key)
		if requested {
			if err := t.Store.DoneRequest(ctx, s.Key, asked); err != nil {
				return err
			}
		}
		t.Log.Info("recommender trained", "recommender", s.Key, "version", m.Version, "users", m.Stats.Users,
			"items", m.Stats.Items, "took", m.Stats.Duration)
	}
	return nil
}

// ErrNoData means there was nothing to train on: no event of the recommender's types
// in its history.
var ErrNoData = errors.New("recommend: no events to train on")

// Train trains one recommender from the source and saves the model.
func (t *Trainer) Train(ctx context.Context, s Spec) (m *Model, err error) {
	defer func() {
		if t.Observe != nil {
			t.Observe(s.Key, m, err)
		}
	}()
	start := t.now()
	b := NewBuilder()
	if err := t.Source.Interactions(ctx, s, start, b.Add); err != nil {
		return nil, fmt.Errorf("recommend: read interactions of %q: %w", s.Key, err)
	}
	popular, err := t.Source.Popular(ctx, s, start)
	if err != nil {
		return nil, fmt.Errorf("recommend: read popular items of %q: %w", s.Key, err)
	}
	if b.Users() == 0 && len(popular) == 0 {
		return nil, ErrNoData
	}
	p := t.Params
	p.Neighbours = s.Neighbours
	m = Train(b, popular, p)
	m.Stats.Duration = t.now().Sub(start) // reading included
	m.Stats.From, m.Stats.To = start.Add(-s.History).UTC(), start.UTC()
	if m.Version, err = t.Store.Save(ctx, s.Key, m); err != nil {
		return nil, fmt.Errorf("recommend: save model of %q: %w", s.Key, err)
	}
	return m, nil
}
