package segments

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// checkpointMagic starts every checkpoint; the last byte is the format version.
const checkpointMagic = "liftseg\x03"

// ErrCorruptCheckpoint is returned by Restore for input that is not a checkpoint of
// this format.
var ErrCorruptCheckpoint = errors.New("segments: corrupt checkpoint")

// Snapshot writes the engine's complete state (every user's remembered events,
// memberships and deadlines, the watermark, the counters) and the offset it
// corresponds to, with a table of the segments it holds (their content ids, keys and
// rebuild status), so that an engine with other definitions can take what still
// applies (see Restore). Restoring it and replaying the input after Offset gives the
// same changes as an uninterrupted run, except that changes emitted after the snapshot
// are emitted again: make the sink idempotent.
//
// The format is compact binary: varints, times as deltas from the user's clock.
func (e *Engine) Snapshot(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	b := []byte(checkpointMagic)
	b = binary.AppendUvarint(b, uint64(len(e.segs)))
	for _, sg := range e.segs {
		b = binary.BigEndian.AppendUint64(b, sg.id)
		b = binary.AppendUvarint(b, uint64(len(sg.key)))
		b = append(b, sg.key...)
		b = binary.AppendUvarint(b, uint64(len(sg.patterns)))
		b = binary.AppendVarint(b, e.from[sg.base])
		b = append(b, boolByte(sg.quiet))
	}
	for _, v := range []int64{e.offset, e.maxTime, e.tickMark, e.received} {
		b = binary.AppendVarint(b, v)
	}
	for _, v := range []uint64{e.processed, e.late, e.duplicates, uint64(len(e.users))} {
		b = binary.AppendUvarint(b, v)
	}
	for _, u := range e.users {
		b = e.appendUser(b, u)
		if len(b) > 1<<15 {
			if _, err := bw.Write(b); err != nil {
				return fmt.Errorf("segments: snapshot: %w", err)
			}
			b = b[:0]
		}
	}
	if _, err := bw.Write(b); err != nil {
		return fmt.Errorf("segments: snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("segments: snapshot: %w", err)
	}
	return nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func (e *Engine) appendUser(b []byte, u *user) []byte {
	b = binary.AppendUvarint(b, uint64(len(u.id)))
	b = append(b, u.id...)
	b = binary.AppendVarint(b, u.now)
	b = binary.AppendVarint(b, deltaOrNever(u.next, u.now))
	b = binary.AppendUvarint(b, uint64(len(u.entries)))
	for _, en := range u.entries {
		b = binary.AppendUvarint(b, uint64(en.slot))
		b = binary.AppendVarint(b, u.now-en.ts)
		b = binary.AppendUvarint(b, math.Float64bits(en.val))
		str := e.strs.get(en.str)
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	b = binary.AppendUvarint(b, uint64(len(u.members)))
	for _, m := range u.members {
		b = binary.AppendUvarint(b, uint64(m.seg))
		flags := byte(0)
		if m.holding {
			flags |= 1
		}
		if m.member {
			flags |= 2
		}
		b = append(b, flags)
		b = binary.AppendVarint(b, u.now-m.since)
		b = binary.AppendVarint(b, m.expires-u.now)
		b = binary.AppendUvarint(b, m.value)
	}
	return b
}

// deltaOrNever encodes never as -1, which no real deadline (always after now) uses.
func deltaOrNever(t, now int64) int64 {
	if t == never {
		return -1
	}
	return t - now
}

// Restored says what a Restore found for the engine's segments.
type Restored struct {
	// Missing are the engine's segments the checkpoint has no complete state for
	// (new or changed rules, or a rebuild the checkpoint was still waiting for):
	// rebuild them from stored events (StartRebuild, Merge).
	Missing []string
	// Renamed are segments whose state was found under another key (a draft's
	// preview that was published): the memberships stored under their key are those
	// of another definition.
	Renamed []string
	// Dropped are keys of the checkpoint the engine no longer has: their stored
	// memberships are stale.
	Dropped []string
	// Future are the users whose state had reached beyond the clock plus the skew
	// (a checkpoint written before the engine bounded event time, when a client's
	// received_at in 2105 counted): their state is dropped and each of their
	// memberships exits at the clock. Clamped says the watermark or the newest
	// receive time was beyond it too and was set back to the clock.
	Future  []string
	Clamped bool
}

// Restore replaces the engine's state with a checkpoint. State moves between
// definitions by content, not key: each of the engine's segments takes the state of
// the checkpoint's segment with the same rule and TTL, if any, and Restored lists the
// segments left without state. Times beyond the engine's clock plus Options.Skew are
// repaired (see Restored.Future); the exits that emits go to OnChange. It
// returns ErrCorruptCheckpoint for malformed input (including checkpoints of an
// older format), leaving the engine empty. Resume the input after Offset().
func (e *Engine) Restore(r io.Reader) (Restored, error) {
	res, err := e.restore(bufio.NewReaderSize(r, 1<<16))
	if err != nil {
		e.users, e.timers, e.strs = map[string]*user{}, nil, interner{}
		e.offset, e.maxTime, e.tickMark, e.received = -1, math.MinInt64, math.MinInt64, math.MinInt64
		e.processed, e.late, e.duplicates = 0, 0, 0
		for i := range e.from {
			e.from[i] = math.MinInt64
		}
		for i := range e.segs {
			e.segs[i].quiet = false
		}
		return Restored{}, err
	}
	e.repair(&res)
	return res, nil
}

// repair undoes what events from beyond the clock left in a restored state: a
// watermark there would make every user's events late until the clock caught up
// (for 2105, forever), and a user's clock there would keep that user's memberships.
func (e *Engine) repair(res *Restored) {
	limit, now := e.limit(), e.now().UnixMilli()
	if e.maxTime > limit || e.received > limit || e.tickMark > limit-e.lateness {
		e.maxTime, e.received = min(e.maxTime, now), min(e.received, now)
		e.tickMark = min(e.tickMark, now-e.lateness)
		res.Clamped = true
	}
	for id, u := range e.users {
		if u.now <= limit {
			continue
		}
		for _, m := range u.members {
			s := &e.segs[m.seg]
			switch {
			case m.member && s.feature != nil:
				if e.onFeature != nil && !s.quiet {
					e.onFeature(FeatureChange{UserID: id, Feature: s.key, At: msTime(now)})
				}
			case m.member:
				e.emit(s, Change{Kind: Exit, UserID: id, Segment: s.key, At: msTime(now)})
			}
		}
		e.Forget(id)
		res.Future = append(res.Future, id)
	}
}

// savedSegment is a segment of a checkpoint and where its state goes in this engine.
type savedSegment struct {
	id       uint64
	key      string
	base     uint64 // first slot in the checkpoint
	patterns uint64
	from     int64
	quiet    bool
	to       []uint16 // engine segments that take its state
}

func (e *Engine) restore(br *bufio.Reader) (Restored, error) {
	d := decoder{r: br}
	magic := d.bytes(len(checkpointMagic))
	if d.err != nil || string(magic) != checkpointMagic {
		return Restored{}, fmt.Errorf("%w: bad header", ErrCorruptCheckpoint)
	}
	n := d.uvarint()
	if n > math.MaxUint16 {
		d.fail("too many segments")
	}
	saved := make([]savedSegment, 0, min(n, 1024))
	slots := uint64(0)
	for i := uint64(0); i < n && d.err == nil; i++ {
		s := savedSegment{id: binary.BigEndian.Uint64(d.bytes(8)), base: slots}
		s.key = string(d.bytes(int(min(d.uvarint(), 1<<10))))
		s.patterns = d.uvarint()
		s.from = d.varint()
		s.quiet = d.bytes(1)[0] == 1
		slots += min(s.patterns, math.MaxUint16)
		saved = append(saved, s)
	}
	if d.err != nil || slots > math.MaxUint16 {
		return Restored{}, fmt.Errorf("%w: segment table: %v", ErrCorruptCheckpoint, d.err)
	}
	res := e.mapSaved(saved)
	slotTo := make([][]uint16, slots) // checkpoint slot → engine slots
	for _, s := range saved {
		for _, seg := range s.to {
			for j := range s.patterns {
				slotTo[s.base+j] = append(slotTo[s.base+j], e.segs[seg].base+uint16(j))
			}
		}
	}
	e.strs = interner{}
	e.offset, e.maxTime, e.tickMark, e.received = d.varint(), d.varint(), d.varint(), d.varint()
	e.processed, e.late, e.duplicates = d.uvarint(), d.uvarint(), d.uvarint()
	users := d.uvarint()
	e.users, e.timers = make(map[string]*user, min(users, 1<<20)), nil
	for i := uint64(0); i < users && d.err == nil; i++ {
		u := e.readUser(&d, saved, slotTo)
		if d.err == nil && (u.entries != nil || u.members != nil) {
			e.users[u.id] = u
			e.reschedule(u)
		}
	}
	if d.err != nil {
		return Restored{}, fmt.Errorf("%w: %v", ErrCorruptCheckpoint, d.err)
	}
	return res, nil
}

// mapSaved decides which checkpoint segment each engine segment takes its state
// from: one with the same content, preferably under the same key, whose rebuild was
// complete.
func (e *Engine) mapSaved(saved []savedSegment) Restored {
	var res Restored
	keys := map[string]bool{}
	for j := range e.segs {
		sg := &e.segs[j]
		keys[sg.key] = true
		found := -1
		for i, s := range saved {
			if s.id == sg.id && !s.quiet && (found < 0 || s.key == sg.key) {
				found = i
			}
		}
		if found < 0 {
			res.Missing = append(res.Missing, sg.key)
			continue
		}
		s := &saved[found]
		s.to = append(s.to, uint16(j))
		for k := range sg.patterns {
			e.from[int(sg.base)+k] = s.from
		}
		if s.key != sg.key {
			res.Renamed = append(res.Renamed, sg.key)
		}
	}
	for _, s := range saved {
		if !keys[s.key] {
			res.Dropped = append(res.Dropped, s.key)
		}
	}
	return res
}

func (e *Engine) readUser(d *decoder, saved []savedSegment, slotTo [][]uint16) *user {
	u := &user{id: string(d.bytes(int(min(d.uvarint(), 1<<16))))}
	u.now = d.varint()
	if u.next = d.varint(); u.next == -1 {
		u.next = never
	} else {
		u.next += u.now
	}
	if n := d.uvarint(); n > 0 && n <= uint64(len(slotTo))*maxKept {
		for range n {
			slot, ts, val := d.uvarint(), u.now-d.varint(), math.Float64frombits(d.uvarint())
			str := e.strs.intern(string(d.bytes(int(min(d.uvarint(), 1<<16)))))
			if slot >= uint64(len(slotTo)) {
				d.fail("slot out of range")
				break
			}
			for _, to := range slotTo[slot] {
				u.entries = append(u.entries, entry{slot: to, ts: ts, val: val, str: str})
			}
		}
		// Slots may be numbered differently here; within one, time order stays.
		slices.SortStableFunc(u.entries, func(a, b entry) int { return int(a.slot) - int(b.slot) })
	} else if n != 0 {
		d.fail("too many entries")
	}
	if n := d.uvarint(); n > 0 && n <= uint64(len(saved)) {
		for range n {
			seg := d.uvarint()
			flags := d.bytes(1)
			m := membership{since: u.now - d.varint(), expires: u.now + d.varint(), value: d.uvarint()}
			m.holding, m.member = flags[0]&1 != 0, flags[0]&2 != 0
			if seg >= uint64(len(saved)) {
				d.fail("segment out of range")
				break
			}
			for _, to := range saved[seg].to {
				m.seg = to
				u.members = append(u.members, m)
			}
		}
	} else if n != 0 {
		d.fail("too many memberships")
	}
	return u
}

// decoder reads varints and remembers the first error, so readers check once.
type decoder struct {
	r   *bufio.Reader
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.r)
	d.err = eofIsUnexpected(err)
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	d.err = eofIsUnexpected(err)
	return v
}

func (d *decoder) bytes(n int) []byte {
	b := make([]byte, n)
	if d.err == nil {
		_, err := io.ReadFull(d.r, b)
		d.err = eofIsUnexpected(err)
	}
	return b
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Checkpoint is what a shard's engine saves with its state.
type Checkpoint struct {
	// Definitions names the segments the state holds, for operators (Restore
	// matches state to definitions by content, not by this).
	Definitions string
	// Shards is the shard count that split the users when it was taken: state taken
	// with another count holds other users.
	Shards int
	// StreamOffset is the last offset of the shard's input the state includes.
	StreamOffset int64
	// State is the engine's Snapshot.
	State []byte
}
