package segments

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// checkpointMagic starts every checkpoint; the last byte is the format version.
const checkpointMagic = "liftseg\x01"

// ErrCorruptCheckpoint is returned by Restore for input that is not a checkpoint of
// this format.
var ErrCorruptCheckpoint = errors.New("segments: corrupt checkpoint")

// Snapshot writes the engine's complete state (every user's remembered events,
// memberships and deadlines, the watermark, the counters) and the offset it
// corresponds to. Restoring it into an engine with the same definitions and replaying
// the input after Offset gives the same changes as an uninterrupted run, except that
// changes emitted after the snapshot are emitted again: make the sink idempotent.
//
// The format is compact binary: varints, times as deltas from the user's clock.
func (e *Engine) Snapshot(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	b := []byte(checkpointMagic)
	b = binary.BigEndian.AppendUint64(b, e.fingerprint)
	for _, v := range []int64{e.offset, e.maxTime, e.tickMark} {
		b = binary.AppendVarint(b, v)
	}
	for _, v := range []uint64{e.processed, e.late, e.duplicates, uint64(len(e.users))} {
		b = binary.AppendUvarint(b, v)
	}
	for _, u := range e.users {
		b = appendUser(b, u)
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

func appendUser(b []byte, u *user) []byte {
	b = binary.AppendUvarint(b, uint64(len(u.id)))
	b = append(b, u.id...)
	b = binary.AppendVarint(b, u.now)
	b = binary.AppendVarint(b, deltaOrNever(u.next, u.now))
	b = binary.AppendUvarint(b, uint64(len(u.entries)))
	for _, en := range u.entries {
		b = binary.AppendUvarint(b, uint64(en.slot))
		b = binary.AppendVarint(b, u.now-en.ts)
		b = binary.AppendUvarint(b, math.Float64bits(en.val))
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

// Restore replaces the engine's state with a snapshot. The engine must have been
// made with the same definitions: Restore returns an error wrapping ErrDefinitions
// otherwise (rebuild the state from stored events instead), and ErrCorruptCheckpoint
// for malformed input. On error the engine is left empty. Resume the input after
// Offset().
func (e *Engine) Restore(r io.Reader) error {
	err := e.restore(bufio.NewReaderSize(r, 1<<16))
	if err != nil {
		e.users, e.timers = map[string]*user{}, nil
		e.offset, e.maxTime, e.tickMark = -1, math.MinInt64, math.MinInt64
		e.processed, e.late, e.duplicates = 0, 0, 0
	}
	return err
}

func (e *Engine) restore(br *bufio.Reader) error {
	d := decoder{r: br}
	magic := d.bytes(len(checkpointMagic))
	if d.err != nil || string(magic) != checkpointMagic {
		return fmt.Errorf("%w: bad header", ErrCorruptCheckpoint)
	}
	if fp := binary.BigEndian.Uint64(d.bytes(8)); d.err == nil && fp != e.fingerprint {
		return fmt.Errorf("%w: the checkpoint was taken with other segment definitions", ErrDefinitions)
	}
	e.offset, e.maxTime, e.tickMark = d.varint(), d.varint(), d.varint()
	e.processed, e.late, e.duplicates = d.uvarint(), d.uvarint(), d.uvarint()
	n := d.uvarint()
	e.users, e.timers = make(map[string]*user, min(n, 1<<20)), nil
	for i := uint64(0); i < n && d.err == nil; i++ {
		u := e.readUser(&d)
		if d.err == nil {
			e.users[u.id] = u
			e.reschedule(u)
		}
	}
	if d.err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptCheckpoint, d.err)
	}
	return nil
}

func (e *Engine) readUser(d *decoder) *user {
	u := &user{id: string(d.bytes(int(min(d.uvarint(), 1<<16))))}
	u.now = d.varint()
	if u.next = d.varint(); u.next == -1 {
		u.next = never
	} else {
		u.next += u.now
	}
	if n := d.uvarint(); n > 0 && n <= uint64(len(e.keep))*maxKept {
		u.entries = make([]entry, n)
		for i := range u.entries {
			slot := d.uvarint()
			if slot >= uint64(len(e.retain)) {
				d.fail("slot out of range")
			}
			u.entries[i] = entry{slot: uint16(slot), ts: u.now - d.varint(), val: math.Float64frombits(d.uvarint())}
		}
	} else if n != 0 {
		d.fail("too many entries")
	}
	if n := d.uvarint(); n > 0 && n <= uint64(len(e.segs)) {
		u.members = make([]membership, n)
		for i := range u.members {
			seg := d.uvarint()
			if seg >= uint64(len(e.segs)) {
				d.fail("segment out of range")
			}
			flags := d.bytes(1)
			m := &u.members[i]
			m.seg = uint16(seg)
			if len(flags) == 1 {
				m.holding, m.member = flags[0]&1 != 0, flags[0]&2 != 0
			}
			m.since = u.now - d.varint()
			m.expires = u.now + d.varint()
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
