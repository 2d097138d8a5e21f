package bandit

import (
	"math"
	"math/rand/v2"
	"strconv"
)

// A policy picks an arm each round from what it has been shown so far.
type policy interface {
	// learn is called at every batch boundary, after the counts have been updated.
	learn(r *rand.Rand) error
	choose(r *rand.Rand) int
}

// tally holds pulls and wins per arm.
type tally struct{ pulls, wins []float64 }

// add moves the counts of from into t.
func (t *tally) add(from *tally) {
	for i := range t.pulls {
		t.pulls[i] += from.pulls[i]
		t.wins[i] += from.wins[i]
		from.pulls[i], from.wins[i] = 0, 0
	}
}

func newPolicy(cfg SimConfig, seen *tally) policy {
	switch cfg.Policy {
	case PolicyTS:
		return thompson{seen}
	case PolicyUCB1:
		return ucb1{seen}
	case PolicyEGreedy:
		return egreedy{seen}
	case PolicyUniform:
		return uniform(len(cfg.Arms))
	}
	return &served{seen: seen, cfg: DefaultConfig(), router: cfg.Router, counts: make([]Counts, len(cfg.Arms))}
}

// thompson draws each arm's rate from its Beta(1+wins, 1+losses) posterior and plays
// the highest draw.
type thompson struct{ seen *tally }

func (thompson) learn(*rand.Rand) error { return nil }

func (p thompson) choose(r *rand.Rand) int {
	best, top := 0, -1.0
	for i, n := range p.seen.pulls {
		w := p.seen.wins[i]
		if v := (Beta{1 + w, 1 + n - w}).dist().draw(r); v > top {
			best, top = i, v
		}
	}
	return best
}

// ucb1 plays every arm once, then the arm maximising mean + √(2 ln t / n).
type ucb1 struct{ seen *tally }

func (ucb1) learn(*rand.Rand) error { return nil }

func (p ucb1) choose(*rand.Rand) int {
	total := 0.0
	for i, n := range p.seen.pulls {
		if n == 0 {
			return i
		}
		total += n
	}
	logT := 2 * math.Log(total)
	best, top := 0, math.Inf(-1)
	for i, n := range p.seen.pulls {
		if v := p.seen.wins[i]/n + math.Sqrt(logT/n); v > top {
			best, top = i, v
		}
	}
	return best
}

// egreedy explores a uniformly random arm with probability Epsilon and otherwise plays
// the best empirical mean, trying every arm once first.
type egreedy struct{ seen *tally }

func (egreedy) learn(*rand.Rand) error { return nil }

func (p egreedy) choose(r *rand.Rand) int {
	if r.Float64() < Epsilon {
		return r.IntN(len(p.seen.pulls))
	}
	best, top := 0, -1.0
	for i, n := range p.seen.pulls {
		if n == 0 {
			return i
		}
		if v := p.seen.wins[i] / n; v > top {
			best, top = i, v
		}
	}
	return best
}

// uniform splits traffic equally whatever it sees.
type uniform int

func (uniform) learn(*rand.Rand) error { return nil }

func (k uniform) choose(r *rand.Rand) int { return r.IntN(int(k)) }

// served is the lift policy: at each batch boundary it publishes Weights computed from
// the counts, and every round a new user with a random id is routed by hashing.
type served struct {
	seen   *tally
	cfg    Config
	router Router
	route  func(userID string) int
	counts []Counts
	id     []byte
}

func (p *served) learn(r *rand.Rand) error {
	for i := range p.counts {
		p.counts[i] = Counts{Exposures: p.seen.pulls[i], Conversions: p.seen.wins[i]}
	}
	// A fresh seed per publication, as the updater's draws differ between runs.
	p.cfg.Seed = r.Uint64()
	res, err := Weights(p.counts, p.cfg)
	if err != nil {
		return err
	}
	p.route = p.router(res.Weights)
	return nil
}

func (p *served) choose(r *rand.Rand) int {
	p.id = strconv.AppendUint(p.id[:0], r.Uint64(), 36)
	return p.route(string(p.id))
}
