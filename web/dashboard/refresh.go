package dashboard

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/liftlab/lift/experiments"
)

// resultsEvery is how often RefreshResults recomputes the results of every running
// and paused experiment. Below cacheTTL, so that what it stored is still recent when
// the experiment page reads it: the list and the page then show one computation.
const resultsEvery = 20 * time.Second

// RefreshResults keeps the results the experiments list shows at most resultsEvery
// old, one experiment at a time, until ctx ends. Without it the list showed whatever
// was computed on someone's previous visit (minutes old) while the experiment page
// computed afresh, so the two disagreed. It also keeps the pre-aggregated
// metric_nodes in ClickHouse current for analysts, and notes since when each
// experiment runs, for the list's "Running" column.
func (d *Dashboard) RefreshResults(ctx context.Context) {
	if d.cache == nil {
		return
	}
	t := time.NewTicker(resultsEvery)
	defer t.Stop()
	for {
		d.refreshResults(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Dashboard) refreshResults(ctx context.Context) {
	docs, err := d.Config.List(ctx, experiments.KindExperiment)
	if err != nil {
		if ctx.Err() == nil {
			d.Log.WarnContext(ctx, "results refresh: list experiments", "err", err)
		}
		return
	}
	live := map[string]bool{}
	for _, doc := range docs {
		var e experiments.Experiment
		if json.Unmarshal(doc, &e) != nil || e.Goal == nil ||
			e.Status != experiments.StatusRunning && e.Status != experiments.StatusPaused {
			continue
		}
		live[e.Key] = true
		if e.Status == experiments.StatusRunning {
			d.since.note(ctx, d.Config, e.Key)
		} else {
			d.since.forget(e.Key)
		}
		rctx, cancel := context.WithTimeout(ctx, backgroundTimeout)
		res, err := d.Results.Results(rctx, e.Key)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.Log.DebugContext(ctx, "results refresh", "err", err, "experiment", e.Key)
			continue
		}
		d.cache.put(e.Key, res)
	}
	d.since.keepOnly(live)
}

// runningSince remembers when each running experiment last started, from the audit
// log: the results say only on which day users were first exposed.
type runningSince struct {
	mu sync.Mutex
	at map[string]time.Time
}

func newRunningSince() *runningSince { return &runningSince{at: map[string]time.Time{}} }

// note looks up when key last became running (the zero time when the audit log does
// not say, so that the list does not ask again).
func (r *runningSince) note(ctx context.Context, config experiments.Manager, key string) {
	entries, err := config.Audit(ctx, experiments.AuditQuery{Entity: experiments.KindExperiment, Key: key, Limit: 100})
	if err != nil {
		return
	}
	r.mu.Lock()
	if _, seen := r.at[key]; !seen {
		r.at[key] = time.Time{}
	}
	r.mu.Unlock()
	status := func(doc json.RawMessage) string {
		var s struct{ Status string }
		_ = json.Unmarshal(doc, &s)
		return s.Status
	}
	for _, e := range entries { // newest first
		if status(e.After) == experiments.StatusRunning && status(e.Before) != experiments.StatusRunning {
			r.mu.Lock()
			r.at[key] = e.At
			r.mu.Unlock()
			return
		}
	}
}

func (r *runningSince) forget(key string) {
	r.mu.Lock()
	delete(r.at, key)
	r.mu.Unlock()
}

func (r *runningSince) keepOnly(keys map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.at {
		if !keys[k] {
			delete(r.at, k)
		}
	}
}

// get returns when key last became running; known is false when it was never looked
// up.
func (r *runningSince) get(key string) (at time.Time, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, known = r.at[key]
	return at, known
}

// maxSinceLookups bounds the audit log lookups one list view makes for experiments the
// refresh has not seen yet, to keep the list within its budget after a restart.
const maxSinceLookups = 5

// describeHeadlines finishes the list's summaries: the best variant by its name, and
// how long a running experiment has run, in minutes or hours on its first days. An
// experiment started since the last refresh is looked up here, once.
func (d *Dashboard) describeHeadlines(ctx context.Context, rows []experimentRow, heads map[string]headline) {
	now := time.Now()
	lookups := 0
	for _, r := range rows {
		h, ok := heads[r.Key]
		if !ok {
			continue
		}
		if name := r.VariantNames[h.Variant]; name != "" {
			h.Variant = name
		}
		if r.Status == experiments.StatusRunning {
			since, known := d.since.get(r.Key)
			if !known && lookups < maxSinceLookups {
				lookups++
				d.since.note(ctx, d.Config, r.Key)
				since, _ = d.since.get(r.Key)
			}
			if !since.IsZero() {
				h.Days = runningFor(now.Sub(since))
			}
		}
		heads[r.Key] = h
	}
}

// runningFor says how long something has run, in the largest unit that reads well.
func runningFor(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour")
	}
	return plural(int(d/(24*time.Hour)), "day")
}
