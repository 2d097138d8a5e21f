package segments

// interner keeps one copy of each property value the features remember (a SKU viewed
// by a hundred thousand users is stored once) and refers to it by a number that fits
// in an entry's padding. Values no entry refers to any more are dropped by compact,
// which the engine runs when the table has doubled since the last time.
type interner struct {
	ids  map[string]uint32
	vals []string // vals[0] is "": no value
	// live is how many values the last compaction kept.
	live int
}

func (in *interner) intern(s string) uint32 {
	if s == "" {
		return 0
	}
	if id, ok := in.ids[s]; ok {
		return id
	}
	if in.ids == nil {
		in.ids = map[string]uint32{}
		in.vals = []string{""}
	}
	id := uint32(len(in.vals))
	in.vals = append(in.vals, s)
	in.ids[s] = id
	return id
}

func (in *interner) get(id uint32) string {
	if id == 0 {
		return ""
	}
	return in.vals[id]
}

// crowded says whether a compaction is due: the table has grown past twice what the
// last one kept (and past a floor, so small tables are left alone).
func (in *interner) crowded() bool { return len(in.vals) > 2*in.live+1<<16 }

// compactStrings rebuilds the value table from the values the users' entries still
// refer to.
func (e *Engine) compactStrings() {
	var next interner
	for _, u := range e.users {
		for i := range u.entries {
			if id := u.entries[i].str; id != 0 {
				u.entries[i].str = next.intern(e.strs.vals[id])
			}
		}
	}
	next.live = len(next.vals)
	e.strs = next
}
