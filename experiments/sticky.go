package experiments

// Sticky bucketing: a bandit re-hashes users into new weights at every update, so a
// user may see another arm on the next visit. With bandit.sticky, /v1/decide returns a
// sticky-bucket document {"<experiment>": "<variant>"} that the client stores (the
// browser SDK keeps it in localStorage) and sends back; a user who brings one stays on
// that variant while it exists and they are eligible.

// Stick applies the sticky-bucket document to decisions made by Decide, in place, and
// returns the document to send back: every sticky experiment the user is in, with
// their variant. It returns nil when no sticky experiment applies.
func (s *Snapshot) Stick(sticky map[string]string, ds []Keyed) map[string]string {
	if !s.hasSticky {
		return nil
	}
	var out map[string]string
	for i := range ds {
		d := &ds[i].Decision
		if !d.Assigned {
			continue
		}
		idx, ok := s.index[d.ExperimentKey]
		if !ok || s.entries[idx].exp == nil || !s.entries[idx].exp.sticky {
			continue
		}
		e := s.entries[idx].exp
		if want, ok := sticky[e.key]; ok && want != d.Variant {
			for j := range e.variants {
				if e.variants[j].key == want {
					// The probability logged is the arm's current weight: the chance the
					// user would get it now, which is what the updater and the
					// inverse-propensity estimates can use.
					d.Variant, d.Value, d.Probability = want, e.variants[j].value, e.alloc.weights[j]
					break
				}
			}
		}
		if out == nil {
			out = map[string]string{}
		}
		out[e.key] = d.Variant
	}
	return out
}
