package segments

// timer wakes a user at an event time. The heap holds at most one live timer per
// user (the one whose at equals user.sched); moved timers stay behind as stale
// entries and are skipped when popped. A timer is only moved earlier, never later
// (a later deadline waits for the earlier wake-up), so stale entries stay rare.
type timer struct {
	at int64
	u  *user
}

// timerHeap is a binary min-heap on at, typed to avoid container/heap's interface
// boxing on the hot path.
type timerHeap []timer

func (h *timerHeap) push(t timer) {
	*h = append(*h, t)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *timerHeap) pop() timer {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = timer{}
	s = s[:n]
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && s[c+1].at < s[c].at {
			c++
		}
		if s[i].at <= s[c].at {
			break
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
	*h = s
	return top
}
