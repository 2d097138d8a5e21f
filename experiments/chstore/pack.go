package chstore

import (
	"encoding/binary"
	"errors"
	"math"
)

// A leaf's aggregates are stored packed in one String column (metric_nodes.packed)
// rather than in the thirteen arrays the root uses: a refresh reads about a
// thousand leaves scattered over the table, and ClickHouse's cost for that grows
// with the number of columns read (measured on 18.16: 0.35 s for the arrays of
// 3,300 leaves, 0.05 s for one column) and with their size, since reading rows
// scattered over a column decompresses nearly all of it. Hence a compact format:
// the number of entries, the distinct variant and segment names (length-prefixed),
// then per entry multi (one byte), the indexes of its variant and segment, its day
// (days since 1970), users and conversions (varints), and the seven sums, each as a
// varint when it is a whole number (conversions, and the inverse-propensity sums
// of simple weights) or as IEEE 754 bits, one byte saying which.

// exactInt is the largest whole number below which every float64 is exact.
const exactInt = 1 << 53

func pack(entries []entry) string {
	// A leaf names a few variants and segments: a list beats a map (a first
	// computation packs 262,144 leaves).
	var names []string
	name := func(s string) uint64 {
		for i, n := range names {
			if n == s {
				return uint64(i)
			}
		}
		names = append(names, s)
		return uint64(len(names) - 1)
	}
	body := make([]byte, 0, len(entries)*24)
	for _, e := range entries {
		body = append(body, e.multi)
		body = binary.AppendUvarint(body, name(e.variant))
		body = binary.AppendUvarint(body, name(e.segment))
		body = binary.AppendVarint(body, e.day/secondsPerDay)
		body = binary.AppendUvarint(body, e.users)
		body = binary.AppendUvarint(body, e.conversions)
		sums := e.sums()
		var whole byte
		for i, f := range sums {
			if *f >= 0 && *f < exactInt && *f == math.Trunc(*f) {
				whole |= 1 << i
			}
		}
		body = append(body, whole)
		for i, f := range sums {
			if whole&(1<<i) != 0 {
				body = binary.AppendUvarint(body, uint64(*f))
			} else {
				body = binary.LittleEndian.AppendUint64(body, math.Float64bits(*f))
			}
		}
	}
	b := binary.AppendUvarint(nil, uint64(len(entries)))
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, s := range names {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return string(append(b, body...))
}

// secondsPerDay converts an entry's day, the Unix time of a midnight, to days.
const secondsPerDay = 86400

// sums returns the seven sums of e in the order pack writes them.
func (e *entry) sums() [7]*float64 {
	return [...]*float64{&e.sum, &e.sumSq, &e.preSum, &e.preSumSq, &e.preCross, &e.ipwNum, &e.ipwDen}
}

var errPacked = errors.New("chstore: malformed packed aggregates")

// reader decodes what pack and packStamps write; the first error sticks.
type reader struct {
	b   []byte
	err error
}

// fail records that the input is malformed and stops reading it.
func (r *reader) fail() { r.err, r.b = errPacked, nil }

// skip drops the k bytes a varint took, or fails for binary's k ≤ 0.
func (r *reader) skip(k int) {
	if k <= 0 {
		r.fail()
		return
	}
	r.b = r.b[k:]
}

func (r *reader) uvarint() uint64 {
	v, k := binary.Uvarint(r.b)
	r.skip(k)
	return v
}

func (r *reader) varint() int64 {
	v, k := binary.Varint(r.b)
	r.skip(k)
	return v
}

// pick reads an index into items and returns that item (the zero value, failing,
// past their end).
func pick[T any](r *reader, items []T) T {
	var item T
	if i := r.uvarint(); i < uint64(len(items)) {
		item = items[i]
	} else {
		r.fail()
	}
	return item
}

func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if v := r.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) uint64() uint64 {
	if v := r.bytes(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

// count reads a number of items of at least size bytes each that follow, which
// cannot be more than the bytes left.
func (r *reader) count(size int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/size) {
		r.fail()
		return 0
	}
	return int(n)
}

// done reports the first error, or one if bytes are left over.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		return errPacked
	}
	return r.err
}

func unpack(s string) ([]entry, error) {
	r := &reader{b: []byte(s)}
	n := r.uvarint()
	names := make([]string, r.count(1))
	for i := range names {
		names[i] = string(r.bytes(r.uvarint()))
	}
	out := make([]entry, 0, min(n, uint64(len(r.b))))
	for range n {
		if r.err != nil {
			break
		}
		var e entry
		e.multi = r.byte()
		e.variant = pick(r, names)
		e.segment = pick(r, names)
		e.day = r.varint() * secondsPerDay
		e.users = r.uvarint()
		e.conversions = r.uvarint()
		whole := r.byte()
		for i, f := range e.sums() {
			if whole&(1<<i) != 0 {
				*f = float64(r.uvarint())
			} else {
				*f = math.Float64frombits(r.uint64())
			}
		}
		out = append(out, e)
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return out, nil
}

// packStamps packs what a root knows of each of its leaves (leafCount of them):
// the distinct versions (eight bytes each), then per leaf its two counts and the
// index of its version, as varints. A refresh writes one version, so a root holds
// as many as the refreshes whose leaves are still current. (This runs for every
// root a refresh stores: one map lookup per leaf, none for a run of one version.)
func packStamps(leaves []leaf) string {
	index := map[uint64]uint64{}
	var versions []uint64
	body := make([]byte, 0, len(leaves)*4)
	var last, i uint64 // the previous leaf's version and its index
	for n, l := range leaves {
		if n == 0 || l.version != last {
			var ok bool
			if i, ok = index[l.version]; !ok {
				i = uint64(len(versions))
				index[l.version] = i
				versions = append(versions, l.version)
			}
			last = l.version
		}
		body = binary.AppendUvarint(body, l.exposureRows)
		body = binary.AppendUvarint(body, l.eventRows)
		body = binary.AppendUvarint(body, i)
	}
	b := binary.AppendUvarint(make([]byte, 0, len(body)+len(versions)*8+binary.MaxVarintLen64), uint64(len(versions)))
	for _, v := range versions {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return string(append(b, body...))
}

func unpackStamps(s string) ([]leaf, error) {
	r := &reader{b: []byte(s)}
	versions := make([]uint64, r.count(8))
	for i := range versions {
		versions[i] = r.uint64()
	}
	out := make([]leaf, leafCount)
	for i := range out {
		out[i].exposureRows, out[i].eventRows = r.uvarint(), r.uvarint()
		out[i].version = pick(r, versions)
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return out, nil
}
