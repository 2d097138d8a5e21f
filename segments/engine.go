package segments

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"time"

	"github.com/liftlab/lift/segments/condition"
)

// Event is one event as the engine needs it. Offset is the event's position in the
// input (e.g. a RabbitMQ stream offset); it must increase strictly, because the engine
// skips offsets it has already applied so that a replay after Restore does not count
// an event twice.
type Event struct {
	Offset int64
	UserID string
	Type   string
	Time   time.Time
	// ReceivedAt, when set, caps how far this event advances the watermark (a client
	// clock minutes ahead must not make everyone else's events late), and the event
	// is late if it was older than the lateness when received.
	ReceivedAt time.Time
	Value      float64
	Properties json.RawMessage // decoded only when a rule's where needs it
}

// Definition is one behavioural segment: a member while Rule holds and for TTL after;
// or, with Feature instead of Rule, a feature whose value is reported as it changes.
type Definition struct {
	Key     string
	Rule    *Rule
	TTL     time.Duration
	Feature *Feature
}

// EventTypes returns the event types the definition reads.
func (d Definition) EventTypes() []string {
	if d.Feature != nil {
		return d.Feature.events
	}
	return d.Rule.EventTypes()
}

// Retention is how far back the definition reads (see Rule.Retention); a rebuild
// needs this much history, plus the TTL.
func (d Definition) Retention() time.Duration {
	if d.Feature != nil {
		return d.Feature.Within()
	}
	return d.Rule.Retention()
}

func (d Definition) patterns() []pattern {
	if d.Feature != nil {
		return []pattern{d.Feature.pattern()}
	}
	return d.Rule.patterns
}

// Options configure an Engine. Zero values take the defaults.
type Options struct {
	// Lateness is how far behind the newest event time seen an event may be and
	// still count (default 1 minute). Older events are dropped and counted in
	// Stats.Late.
	Lateness time.Duration
	// IdleAfter is how long Tick must see no events before it advances the
	// watermark with the processing clock (default 1 minute); see Tick.
	IdleAfter time.Duration
	// OnChange receives every membership change, synchronously, on the goroutine
	// that called Process, Tick or Restore.
	OnChange func(Change)
	// OnFeature receives every new value of a feature, the same way.
	OnFeature func(FeatureChange)
	// Now is the engine's clock (default time.Now) and Skew how far ahead of it an
	// event may have been received (or, without a receive time, have happened) and
	// still count (default 5 minutes, what the collector allows a client's clock).
	// Later events are dropped and counted in Stats.Future, so that no event can move
	// the watermark past Now plus Skew and make everyone else's events late; Restore
	// repairs a checkpoint that holds such times (see Restored.Future).
	Now  func() time.Time
	Skew time.Duration
}

// Engine evaluates behavioural segments over a stream of events, keyed by user, in
// event time. It is not safe for concurrent use: run one engine per shard (see
// Shard) and feed it from one goroutine.
type Engine struct {
	segs      []segment
	byType    map[string][]slotRef
	retain    []int64 // per slot, ms
	keep      []int   // per slot
	distinct  []bool  // per slot: keeps only the newest event of each value
	from      []int64 // per slot: events received before it do not count (see StartRebuild)
	users     map[string]*user
	timers    timerHeap
	onChange  func(Change)
	onFeature func(FeatureChange)
	now       func() time.Time
	// strs holds the property values features remember.
	strs interner

	lateness, idleAfter, skew int64 // ms

	offset   int64
	maxTime  int64 // newest event time accepted, ms
	tickMark int64 // watermark floor set by Tick
	received int64 // newest ReceivedAt of the input so far, ms
	// Processing-time bookkeeping of Tick; deliberately not checkpointed.
	busy       bool
	lastActive int64

	processed, late, duplicates uint64
	future                      uint64 // not checkpointed: a metric of this process
}

type segment struct {
	key     string
	rule    *Rule    // nil for a feature
	feature *Feature // nil for a segment
	// patterns are the rule's, or the feature's one.
	patterns []pattern
	ttl      int64  // ms
	base     uint16 // first slot of the rule's patterns
	// id identifies the definition by content (rule and TTL, not key): state is
	// carried over between engines by it, so a renamed or published segment keeps
	// its state.
	id uint64
	// quiet: the segment's history is being rebuilt (StartRebuild), so its
	// memberships are incomplete and its changes are not reported.
	quiet bool
}

type slotRef struct {
	slot  uint16
	where *condition.Condition
	// property is where a feature's value is, nil if it keeps none; distinct keeps
	// only the newest event of each value.
	property []string
	distinct bool
}

// Stats describe an engine's state and input; see docs/segments.md for their use as
// metrics.
type Stats struct {
	Users      int    // users with state (recent events or a membership)
	Entries    int    // remembered events over all users
	Timers     int    // heap entries, live and stale
	Processed  uint64 // events applied
	Late       uint64 // events older than the watermark, ignored
	Future     uint64 // events from beyond the clock plus Skew, ignored (since this engine started)
	Duplicates uint64 // events at an offset already applied, ignored
	Offset     int64  // last applied offset, -1 if none
	Watermark  time.Time
}

// ErrDefinitions is returned by NewEngine for invalid definitions.
var ErrDefinitions = errors.New("segments: invalid definitions")

// NewEngine makes an engine for the definitions. It returns an error wrapping
// ErrDefinitions if a key is empty or repeated, a rule is nil or a TTL negative.
func NewEngine(defs []Definition, opts Options) (*Engine, error) {
	e := &Engine{
		byType:    map[string][]slotRef{},
		users:     map[string]*user{},
		onChange:  opts.OnChange,
		onFeature: opts.OnFeature,
		now:       opts.Now,
		lateness:  cmpOr(opts.Lateness, time.Minute).Milliseconds(),
		idleAfter: cmpOr(opts.IdleAfter, time.Minute).Milliseconds(),
		skew:      cmpOr(opts.Skew, 5*time.Minute).Milliseconds(),
		offset:    -1,
		maxTime:   math.MinInt64,
		tickMark:  math.MinInt64,
		received:  math.MinInt64,
	}
	if e.now == nil {
		e.now = time.Now
	}
	seen := map[string]bool{}
	for i, d := range defs {
		switch {
		case d.Key == "" || seen[d.Key]:
			return nil, fmt.Errorf("%w: definition %d: empty or repeated key %q", ErrDefinitions, i, d.Key)
		case (d.Rule == nil) == (d.Feature == nil):
			return nil, fmt.Errorf("%w: %q: a rule or a feature is required, not both", ErrDefinitions, d.Key)
		case (d.Feature != nil) != IsFeatureKey(d.Key):
			return nil, fmt.Errorf("%w: %q: feature keys, and only they, start with %q", ErrDefinitions, d.Key, FeaturePrefix)
		case d.TTL < 0:
			return nil, fmt.Errorf("%w: segment %q: negative ttl", ErrDefinitions, d.Key)
		case len(e.retain)+len(d.patterns()) > math.MaxUint16 || i >= math.MaxUint16:
			return nil, fmt.Errorf("%w: too many segments", ErrDefinitions)
		}
		seen[d.Key] = true
		base := uint16(len(e.retain))
		e.segs = append(e.segs, segment{key: d.Key, rule: d.Rule, feature: d.Feature, patterns: d.patterns(),
			ttl: d.TTL.Milliseconds(), base: base, id: definitionID(d)})
		for j, p := range d.patterns() {
			slot := base + uint16(j)
			if f := d.Feature; f != nil {
				// Every event type of a feature feeds its one series.
				for _, ev := range f.events {
					e.byType[ev] = append(e.byType[ev], slotRef{slot: slot, where: p.where, property: f.property, distinct: f.distinctValues()})
				}
			} else {
				e.byType[p.event] = append(e.byType[p.event], slotRef{slot: slot, where: p.where})
			}
			e.retain = append(e.retain, p.retain)
			e.distinct = append(e.distinct, d.Feature != nil && d.Feature.distinctValues())
			e.keep = append(e.keep, p.keep)
			e.from = append(e.from, math.MinInt64)
		}
	}
	return e, nil
}

// definitionID hashes what a segment's state depends on: its rule and TTL (a
// feature's: its definition).
func definitionID(d Definition) uint64 {
	h := fnv.New64a()
	if d.Feature != nil {
		fmt.Fprintf(h, "feature %s", d.Feature.canonical)
	} else {
		fmt.Fprintf(h, "%s %d", d.Rule.canonical, d.TTL.Milliseconds())
	}
	return h.Sum64()
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Watermark is the event time up to which the engine considers its input complete:
// the newest event time minus the allowed lateness, or what Tick advanced it to.
func (e *Engine) Watermark() time.Time {
	if w := e.watermark(); w != math.MinInt64 {
		return time.UnixMilli(w).UTC()
	}
	return time.Time{}
}

func (e *Engine) watermark() int64 {
	if e.maxTime == math.MinInt64 {
		return e.tickMark
	}
	return max(e.maxTime-e.lateness, e.tickMark)
}

// limit is the latest receive (or event) time the engine believes: its clock plus
// the skew allowed, ms.
func (e *Engine) limit() int64 { return e.now().UnixMilli() + e.skew }

// Offset is the offset of the last applied event, -1 if none: resume the input after it.
func (e *Engine) Offset() int64 { return e.offset }

// Received is the newest ReceivedAt of the events processed so far (zero if none):
// every event before Offset was received no later. A rebuild's cut must be after it
// (see StartRebuild).
func (e *Engine) Received() time.Time {
	if e.received == math.MinInt64 {
		return time.Time{}
	}
	return msTime(e.received)
}

// SetOffset declares the input up to offset applied, so the next event must come
// after it. Use it after rebuilding state from stored events (fed with offsets of
// their own, counting from 0) to continue with the live input at offset+1.
func (e *Engine) SetOffset(offset int64) { e.offset = offset }

// Stats returns counters and sizes; it walks every user, so call it seconds apart.
func (e *Engine) Stats() Stats {
	s := Stats{Users: len(e.users), Timers: len(e.timers), Processed: e.processed,
		Late: e.late, Future: e.future, Duplicates: e.duplicates, Offset: e.offset, Watermark: e.Watermark()}
	for _, u := range e.users {
		s.Entries += len(u.entries)
	}
	return s
}

// Process applies one event: it advances the watermark, fires the timers it passes
// (window ends, TTLs, evictions of every user), and re-evaluates the event's user at
// once, so an Enter reaches OnChange before Process returns. Events older than the
// watermark or from beyond the clock (see Options.Skew), and offsets already
// applied, are ignored and counted.
func (e *Engine) Process(ev Event) {
	if ev.Offset <= e.offset {
		e.duplicates++
		return
	}
	e.offset = ev.Offset
	e.busy = true
	t := ev.Time.UnixMilli()
	// What would move the watermark and a rebuild's cut: the receive time, else the
	// event time.
	ahead := t
	if !ev.ReceivedAt.IsZero() {
		ahead = ev.ReceivedAt.UnixMilli()
	}
	if ahead > e.limit() {
		e.future++
		return
	}
	recv := int64(math.MaxInt64) // no receive time: counts for every segment
	if ev.ReceivedAt.IsZero() {
		e.maxTime = max(e.maxTime, t)
	} else {
		recv = ev.ReceivedAt.UnixMilli()
		e.received = max(e.received, recv)
		e.maxTime = max(e.maxTime, min(t, recv))
	}
	wm := e.watermark()
	// Also late: an event already older than the lateness when it was received. This
	// holds even before other traffic has moved the watermark (a fresh engine, a
	// quiet shard), and, depending only on the event, it replays identically.
	if t < wm || (!ev.ReceivedAt.IsZero() && t < ev.ReceivedAt.UnixMilli()-e.lateness) {
		e.late++
		return
	}
	e.processed++
	e.fire(wm)
	e.apply(ev, t, recv)
	if e.strs.crowded() {
		e.compactStrings()
	}
}

// Tick lets memberships expire while no events arrive. Event time advances only with
// events, so on an idle input window ends and TTLs would never pass. Call Tick
// periodically (e.g. every second) with the processing clock: once it has seen no
// event for IdleAfter, it moves the watermark to now minus Lateness, as if an event
// stamped now had arrived. While events flow it does nothing, so replaying a backlog
// (whose event times lag the clock) never makes that backlog late.
func (e *Engine) Tick(now time.Time) {
	p := now.UnixMilli()
	if e.busy || e.lastActive == 0 {
		e.busy, e.lastActive = false, p
		return
	}
	if p-e.lastActive < e.idleAfter || p-e.lateness <= e.tickMark {
		return
	}
	e.tickMark = p - e.lateness
	e.fire(e.watermark())
}

func (e *Engine) apply(ev Event, t, recv int64) {
	refs := e.byType[ev.Type]
	if len(refs) == 0 {
		return
	}
	var (
		props   map[string]any
		decoded bool
		u       = e.users[ev.UserID]
	)
	for _, r := range refs {
		if recv < e.from[r.slot] {
			continue // a rebuilt segment had this event from storage
		}
		if (r.where != nil || r.property != nil) && !decoded {
			props, decoded = decodeProperties(ev.Properties), true
		}
		if r.where != nil && !r.where.Match(props, nil) {
			continue
		}
		var str uint32
		if r.property != nil {
			v := propertyValue(props, r.property)
			if v == "" {
				continue // a feature of a property the event lacks
			}
			str = e.strs.intern(v)
		}
		if u == nil {
			// Clone: the caller's id may alias a reused message buffer.
			u = &user{id: strings.Clone(ev.UserID), now: t, next: never}
			e.users[u.id] = u
		}
		if t > u.now {
			// Deadlines before this event are evaluated without it first, so
			// changes carry their exact times.
			e.catchUp(u, t-1)
		}
		if r.distinct {
			u.insertDistinct(r.slot, t, str, e.keep[r.slot])
		} else {
			u.insert(r.slot, t, ev.Value, str, e.keep[r.slot])
		}
	}
	if u == nil {
		return
	}
	e.evaluate(u, max(u.now, t))
	e.reschedule(u)
}

func decodeProperties(raw json.RawMessage) map[string]any {
	var m map[string]any
	if len(raw) > 0 && json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// fire wakes the users whose timers are at or before the watermark.
func (e *Engine) fire(wm int64) {
	for len(e.timers) > 0 && e.timers[0].at <= wm {
		tm := e.timers.pop()
		u := tm.u
		if u.sched != tm.at {
			continue // stale: moved earlier, or the user was evicted
		}
		u.sched = 0
		e.catchUp(u, wm)
		e.reschedule(u)
	}
}

// catchUp evaluates u at each of its deadlines up to limit, in order. A deadline
// behind the user's clock (state merged from a rebuild) is evaluated at the clock,
// which never goes back.
func (e *Engine) catchUp(u *user, limit int64) {
	for u.next <= limit {
		e.evaluate(u, max(u.next, u.now))
	}
}

// reschedule arms u's timer for u.next, or evicts u when it has nothing left.
func (e *Engine) reschedule(u *user) {
	if u.entries == nil && u.members == nil {
		delete(e.users, u.id)
		u.sched = 0
		return
	}
	if u.next != never && (u.sched == 0 || u.next < u.sched) {
		u.sched = u.next
		e.timers.push(timer{at: u.next, u: u})
	}
}
