package retailsim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liftlab/lift/web/client"
)

// Options configure a run.
type Options struct {
	Scenario Scenario
	Client   *client.Client // decides and sends events; a client key is enough
	// Rate is the open-loop arrival rate in sessions per second: sessions start on
	// schedule whether or not earlier ones have finished.
	Rate float64
	// Sessions stops the run after this many sessions; Duration after this long.
	// Zero for both: until ctx ends.
	Sessions int
	Duration time.Duration
	Seed     uint64
	// Prefix starts every user id, so runs do not share users.
	Prefix string
	// Think is the pause between a visitor's page views (default none).
	Think time.Duration
	// OfferWait is how long a visitor who qualifies for the offer waits after their
	// product views before asking lift again (default 1.5 s: the segment engine
	// needs about a second).
	OfferWait time.Duration
	// MaxInFlight bounds concurrent sessions (default 2,000); arrivals beyond it wait,
	// which shows as lag.
	MaxInFlight int
	// Progress, when set, is called about twice a second and at the end.
	Progress func(Progress)
	// Browse only: visitors send no exposures, so no experiment counts them (a
	// warm-up that gives a recommender history to learn from), and see no
	// recommendation block.
	BrowseOnly bool
}

// Progress is a snapshot of a running simulation.
type Progress struct {
	Started, Done, Total int64 // Total 0 when open-ended
	InFlight             int64
	Errors               int64
	Elapsed              time.Duration
	// Lag is how far behind its schedule the latest session started.
	Lag      time.Duration
	LastErr  string
	Finished bool
}

// Truth is what the run simulated: per experiment and variant the users lift
// assigned and their true expected conversions; per bandit and segment the true
// click rates; segment sizes.
type Truth struct {
	Sessions int64
	// Experiments[key][variant] counts users assigned to the variant and sums, over
	// every user assigned to the experiment, the purchase probability each would
	// have had under that variant (everything else as it happened): Expected/Users
	// of the whole experiment is the variant's true rate in this population.
	Experiments map[string]*ExperimentTruth
	Bandits     map[string]map[string]*BanditTruth // key → segment ("" global)
	Visitors    map[string]int64                   // segment name → visitors
	// OfferQualified visitors made OfferViews product views; OfferServed were
	// served the offer's non-default variant.
	OfferQualified, OfferServed int64
	Purchases                   int64
	Revenue                     float64
}

// ExperimentTruth is one experiment's ground truth.
type ExperimentTruth struct {
	Users    int64              // users assigned
	Expected map[string]float64 // variant with effects → Σ over all users of P(purchase | variant)
	Baseline float64            // the same for variants without effects (factor 1)
	Assigned map[string]int64   // variant → users assigned
	Bought   map[string]int64   // variant → users who purchased
}

// TrueRate is the purchase rate variant would have had over every assigned user.
func (e *ExperimentTruth) TrueRate(variant string) float64 {
	if e.Users == 0 {
		return 0
	}
	if x, ok := e.Expected[variant]; ok {
		return x / float64(e.Users)
	}
	return e.Baseline / float64(e.Users)
}

// BanditTruth is one bandit segment's ground truth.
type BanditTruth struct {
	Users    int64
	Expected map[string]float64 // arm → Σ over the segment's users of P(click | arm)
	Assigned map[string]int64
}

// TrueRate is the arm's mean click rate over the segment's users.
func (b *BanditTruth) TrueRate(arm string) float64 {
	if b.Users == 0 {
		return 0
	}
	return b.Expected[arm] / float64(b.Users)
}

// Best is the arm with the highest true rate.
func (b *BanditTruth) Best() string {
	best, rate := "", -1.0
	for _, arm := range slices.Sorted(maps.Keys(b.Expected)) {
		if r := b.TrueRate(arm); r > rate {
			best, rate = arm, r
		}
	}
	return best
}

// Run simulates sessions until Sessions, Duration or ctx ends, waits for the
// sessions in flight, flushes the events and returns the truth. Errors of single
// requests are counted in Progress and do not stop the run.
func Run(ctx context.Context, o Options) (*Truth, error) {
	if err := o.Scenario.Validate(); err != nil {
		return nil, err
	}
	if o.Client == nil || !(o.Rate > 0) {
		return nil, errors.New("retailsim: a client and a rate > 0 are required")
	}
	if o.OfferWait == 0 {
		o.OfferWait = 1500 * time.Millisecond
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 2000
	}
	r := &run{o: o, truth: &Truth{Experiments: map[string]*ExperimentTruth{},
		Bandits: map[string]map[string]*BanditTruth{}, Visitors: map[string]int64{}}}
	r.batch = client.NewBatcher(o.Client, client.BatcherOptions{Size: 1000, Interval: 500 * time.Millisecond,
		OnError: func(err error, events []client.Event) {
			r.fail(fmt.Errorf("%d events not delivered: %w", len(events), err))
		}})
	runCtx := ctx
	if o.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	start := time.Now()
	stopProgress := r.reportProgress(start)

	// Sessions run to their end after the run is stopped, so that their truth and
	// their events agree, but give up 10 s after ctx ends (lift may be gone).
	sessionCtx, endSessions := context.WithCancel(context.WithoutCancel(ctx))
	defer endSessions()
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(10*time.Second, endSessions) })
	defer stopAfter()
	slots := make(chan struct{}, o.MaxInFlight)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / o.Rate)
	for i := int64(0); o.Sessions == 0 || i < int64(o.Sessions); i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-runCtx.Done():
			case <-time.After(wait):
			}
		}
		if runCtx.Err() != nil {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-runCtx.Done():
		}
		if runCtx.Err() != nil {
			break
		}
		r.lag.Store(int64(time.Since(due)))
		r.started.Add(1)
		wg.Go(func() {
			defer func() { <-slots; r.done.Add(1) }()
			r.session(sessionCtx, i)
		})
	}
	wg.Wait()
	flushCtx, cancel := context.WithTimeout(sessionCtx, time.Minute)
	defer cancel()
	err := r.batch.Close(flushCtx)
	stopProgress()
	r.truth.Sessions = r.done.Load()
	return r.truth, err
}

type run struct {
	o     Options
	batch *client.Batcher

	started, done, errs, lag atomic.Int64
	lastErr                  atomic.Value

	mu    sync.Mutex
	truth *Truth
}

func (r *run) fail(err error) {
	r.errs.Add(1)
	r.lastErr.Store(err.Error())
}

func (r *run) reportProgress(start time.Time) (stop func()) {
	if r.o.Progress == nil {
		return func() {}
	}
	snapshot := func(finished bool) Progress {
		p := Progress{Started: r.started.Load(), Done: r.done.Load(), Total: int64(r.o.Sessions),
			Errors: r.errs.Load(), Elapsed: time.Since(start), Lag: time.Duration(r.lag.Load()), Finished: finished}
		p.InFlight = p.Started - p.Done
		if s, ok := r.lastErr.Load().(string); ok {
			p.LastErr = s
		}
		return p
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.o.Progress(snapshot(false))
			case <-done:
				r.o.Progress(snapshot(true))
				return
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// session is one visit: decide, home page, product views, maybe the offer, the
// recommendation block, maybe a cart add and a purchase. Randomness comes from the
// seed and the session's index only, so a seed replays the same visitors.
func (r *run) session(ctx context.Context, i int64) {
	sc := &r.o.Scenario
	rng := rand.New(rand.NewPCG(r.o.Seed, uint64(i)))
	v := Visitor{Returning: rng.Float64() < sc.ReturningShare, Device: pick(sc.Devices, rng.Float64()), Country: pick(sc.Countries, rng.Float64())}
	user := fmt.Sprintf("%s%06d", r.o.Prefix, i)
	visits := 1
	if v.Returning {
		visits = 2 + rng.IntN(8)
	}
	attrs := map[string]any{"device": v.Device, "returning": v.Returning, "visits": visits}
	if v.Country != "" {
		attrs["country"] = v.Country
	}
	d, err := r.o.Client.Decide(ctx, user, attrs)
	if err != nil {
		r.fail(err)
		return
	}
	// Draws happen in a fixed order whatever lift answered, so the same visitor makes
	// the same choices in every run with this seed. The visitor's taste and walk
	// through the catalog come from a source of their own.
	uViews, uClick, uCart, uBuy, uValue := rng.Float64(), rng.Float64(), rng.Float64(), rng.Float64(), rng.NormFloat64()
	views := 1 + poisson(product(sc.ProductViews, v), uViews)
	trng := rand.New(rand.NewPCG(r.o.Seed^0x7a57e5, uint64(i)))
	shopper, uRecClick := catalog.NewShopper(trng), trng.Float64()
	var viewed []int
	for range views {
		last := -1
		if len(viewed) > 0 {
			last = viewed[len(viewed)-1]
		}
		viewed = append(viewed, catalog.Next(trng, tastes, shopper, last))
	}
	favourite := viewed[0] // the viewed product that appeals most
	for _, p := range viewed {
		if catalog.Appeal(tastes, shopper, viewed, p) > catalog.Appeal(tastes, shopper, viewed, favourite) {
			favourite = p
		}
	}
	viewsSent := time.Now()

	var events []client.Event
	add := func(typ string, value float64, props map[string]any) {
		events = append(events, client.Event{Type: typ, UserID: user, Value: value, Properties: props, Timestamp: time.Now().UTC()})
	}
	r.pause()
	add("page_view", 0, map[string]any{"path": "/"})
	var viewEvents []client.Event
	for _, p := range viewed {
		r.pause()
		viewEvents = append(viewEvents, client.Event{Type: "product_view", UserID: user, Timestamp: time.Now().UTC(),
			Properties: map[string]any{"sku": catalog.Products[p].SKU}})
	}
	// Product views go out at once, as the behavioural segment depends on them.
	if err := r.o.Client.Send(ctx, viewEvents); err != nil {
		r.fail(err)
	}
	offered, qualified := false, sc.Offer != "" && views >= sc.OfferViews
	if qualified {
		time.Sleep(r.o.OfferWait)
		if again, err := r.o.Client.Decide(ctx, user, attrs, sc.Offer); err == nil {
			if od, ok := again.Decisions[sc.Offer]; ok {
				d.Decisions[sc.Offer] = od
				offered = od.Reason != "default" && od.Reason != "disabled"
			}
		} else {
			r.fail(err)
		}
	}
	// Exposures are logged by the visitor, as lift.js does when rendering: their
	// segment and probability come with the decision. The recommendation
	// experiment's is logged when its block is shown.
	recs := sc.Recommendations
	if r.o.BrowseOnly {
		recs = nil
	}
	for key, dec := range d.Decisions {
		if dec.Exposure != nil && !r.o.BrowseOnly && (recs == nil || key != recs.Experiment) {
			add("$exposure", 0, dec.Exposure)
		}
	}
	var shown *recsShown
	if recs != nil {
		viewsSent = viewsSent.Add(recs.wait())
		if wait := time.Until(viewsSent); wait > 0 {
			time.Sleep(wait)
		}
		var err error
		if shown, err = r.recommend(ctx, recs, user, attrs, shopper, viewed); err != nil {
			r.fail(err)
		} else {
			if shown.exposure != nil {
				add("$exposure", 0, shown.exposure)
			}
			if shown.impression != nil {
				add("$recommendation", 0, shown.impression)
			}
			if best := shown.best; best >= 0 && uRecClick < recs.Click*shown.appeal[shown.variant] {
				add("product_view", 0, map[string]any{"sku": catalog.Products[best].SKU, "recommendation_id": shown.id})
				favourite = best
			}
		}
	}

	// The recommendation block: a click on the bandit's arm.
	type banditSeen struct{ key, segment, arm string }
	var bandits []banditSeen
	for key := range sc.Bandits {
		dec, ok := d.Decisions[key]
		if !ok || dec.Exposure == nil || r.o.BrowseOnly {
			continue
		}
		seg, _ := dec.Exposure["segment"].(string)
		bandits = append(bandits, banditSeen{key, seg, dec.Variant})
		if uClick < clickRate(sc.Bandits[key][dec.Variant], v) {
			add("click", 0, map[string]any{"block": key, "arm": dec.Variant})
		}
	}

	// The purchase probability: base × segment factors × the variants' effects.
	p := product(sc.Purchase, v)
	served := map[string]string{}
	for key := range sc.Effects {
		if dec, ok := d.Decisions[key]; ok {
			served[key] = dec.Variant
			p *= sc.effect(key, dec.Variant, v)
		}
	}
	pWithoutRecs := p
	if shown != nil {
		p *= 1 + recs.Boost*shown.appeal[shown.variant]
	}
	p = math.Min(p, 1)
	cart := math.Max(product(sc.Cart, v), p)
	bought := uBuy < p
	if bought || uCart < cart {
		r.pause()
		add("add_to_cart", 0, map[string]any{"sku": catalog.Products[favourite].SKU})
	}
	value := 0.0
	if bought {
		value = math.Round(logNormal(sc.OrderValue.Mean, sc.OrderValue.SD, uValue)*100) / 100
		r.pause()
		add("purchase", value, map[string]any{"items": 1 + int(value/50), "sku": catalog.Products[favourite].SKU})
	}
	for _, e := range events {
		if err := r.batch.Add(e); err != nil {
			r.fail(err)
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.truth
	for _, s := range v.segments()[1:] {
		t.Visitors[s]++
	}
	if qualified {
		t.OfferQualified++
	}
	if offered {
		t.OfferServed++
	}
	if bought {
		t.Purchases++
		t.Revenue += value
	}
	if shown != nil && shown.variant != "" {
		// The recommendation experiment: each arm's rate is what its block would
		// have made of this visitor's purchase, everything else as it happened.
		et := t.experiment(recs.Experiment)
		et.Users++
		et.Assigned[shown.variant]++
		if bought {
			et.Bought[shown.variant]++
		}
		for variant := range recs.Arms {
			et.Expected[variant] += math.Min(pWithoutRecs*(1+recs.Boost*shown.appeal[variant]), 1)
		}
	}
	for key, dec := range d.Decisions {
		if dec.Exposure == nil || r.o.BrowseOnly || sc.Bandits[key] != nil || sc.Recommendations != nil && key == sc.Recommendations.Experiment {
			continue
		}
		et := t.experiment(key)
		et.Users++
		et.Assigned[dec.Variant]++
		if bought {
			et.Bought[dec.Variant]++
		}
		// Counterfactuals: the same visitor under each variant this experiment has
		// effects for (the served one included); unlisted variants have factor 1.
		base := p / sc.effect(key, dec.Variant, v)
		for variant := range sc.Effects[key] {
			et.Expected[variant] += math.Min(base*sc.effect(key, variant, v), 1)
		}
		et.Baseline += math.Min(base, 1)
	}
	for _, b := range bandits {
		segs := t.Bandits[b.key]
		if segs == nil {
			segs = map[string]*BanditTruth{}
			t.Bandits[b.key] = segs
		}
		bt := segs[b.segment]
		if bt == nil {
			bt = &BanditTruth{Expected: map[string]float64{}, Assigned: map[string]int64{}}
			segs[b.segment] = bt
		}
		bt.Users++
		bt.Assigned[b.arm]++
		for arm, rates := range sc.Bandits[b.key] {
			bt.Expected[arm] += clickRate(rates, v)
		}
	}
}

// experiment returns an experiment's truth, made on first use.
func (t *Truth) experiment(key string) *ExperimentTruth {
	et := t.Experiments[key]
	if et == nil {
		et = &ExperimentTruth{Expected: map[string]float64{}, Assigned: map[string]int64{}, Bought: map[string]int64{}}
		t.Experiments[key] = et
	}
	return et
}

func (r *run) pause() {
	if r.o.Think > 0 {
		time.Sleep(r.o.Think)
	}
}

// poisson inverts the Poisson CDF at u.
func poisson(mean, u float64) int {
	p := math.Exp(-mean)
	cdf := p
	k := 0
	for u > cdf && k < 100 {
		k++
		p *= mean / float64(k)
		cdf += p
	}
	return k
}

// logNormal turns a standard normal draw z into a log-normal value of the given mean
// and standard deviation.
func logNormal(mean, sd, z float64) float64 {
	s2 := math.Log(1 + sd*sd/(mean*mean))
	return math.Exp(math.Log(mean) - s2/2 + math.Sqrt(s2)*z)
}
