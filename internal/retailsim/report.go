package retailsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/liftlab/lift/bandit"
	"github.com/liftlab/lift/experiments/stats"
)

// Report compares what lift measured with the simulated truth.
type Report struct {
	Sessions    int64              `json:"sessions"`
	Purchases   int64              `json:"purchases"`
	Revenue     float64            `json:"revenue"`
	Visitors    map[string]int64   `json:"visitors"`
	Experiments []ExperimentReport `json:"experiments"`
	Bandits     []BanditReport     `json:"bandits"`
	Segments    []SegmentReport    `json:"segments"`
	// Settled is false when lift's counts had not caught up with the simulation when
	// the report was made (see Measure's wait).
	Settled bool `json:"settled"`
}

// ExperimentReport is one A/B test: per variant, control first.
type ExperimentReport struct {
	Key      string          `json:"key"`
	Variants []VariantReport `json:"variants"`
}

// VariantReport compares one variant's measured goal with the truth.
type VariantReport struct {
	Key                 string   `json:"key"`
	SimulatedUsers      int64    `json:"simulated_users"`
	MeasuredUsers       float64  `json:"measured_users"`
	SimulatedBuyers     int64    `json:"simulated_conversions"`
	MeasuredBuyers      float64  `json:"measured_conversions"`
	TrueRate            float64  `json:"true_rate"`
	MeasuredRate        float64  `json:"measured_rate"`
	TrueLift            *float64 `json:"true_lift,omitempty"`
	Lift                *float64 `json:"lift,omitempty"`
	CILow               *float64 `json:"ci_low,omitempty"`
	CIHigh              *float64 `json:"ci_high,omitempty"`
	PValue              *float64 `json:"p_value,omitempty"`
	TrueLiftWithinCI    *bool    `json:"true_lift_within_ci,omitempty"`
	ChanceToBeatControl *float64 `json:"chance_to_beat_control,omitempty"`
}

// BanditReport is one bandit, per segment.
type BanditReport struct {
	Key      string                `json:"key"`
	Segments []BanditSegmentReport `json:"segments"`
}

// BanditSegmentReport compares a segment's bandit with the truth.
type BanditSegmentReport struct {
	Segment        string             `json:"segment"`
	SimulatedUsers int64              `json:"simulated_users"`
	Exposures      float64            `json:"measured_exposures"`
	TrueRates      map[string]float64 `json:"true_rates"`
	TrueBest       string             `json:"true_best"`
	MeasuredBest   string             `json:"measured_best"` // highest P(best)
	PBest          map[string]float64 `json:"p_best"`
	Weights        map[string]float64 `json:"weights"`
	// Allocation is the share of the simulated users served each arm.
	Allocation map[string]float64 `json:"allocation"`
	Match      bool               `json:"match"`
}

// SegmentReport compares a behavioural segment's size with the simulation's count.
type SegmentReport struct {
	Key             string `json:"key"`
	SimulatedQualif int64  `json:"simulated_qualified"`
	MeasuredEntered int64  `json:"measured_entered_last_hour"`
	MeasuredMembers int64  `json:"measured_members"`
	OfferServed     int64  `json:"offer_served"`
}

// API reads lift's management API with a server key.
type API struct {
	BaseURL, Key string
	HTTP         *http.Client
}

func (a API) get(ctx context.Context, path string, out any) error {
	body, err := a.do(ctx, http.MethodGet, path)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, out)
}

func (a API) post(ctx context.Context, path string) error {
	_, err := a.do(ctx, http.MethodPost, path)
	return err
}

// do sends a request without a body with the API key and returns the answer's body,
// or an error naming the request and lift's answer when it is not a 2xx.
func (a API) do(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.BaseURL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.Key)
	hc := a.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// results is the part of GET /api/v1/experiments/{key}/results the report reads.
type results struct {
	Metrics []struct {
		Role     string                `json:"role"`
		Variants []stats.VariantResult `json:"variants"`
	} `json:"metrics"`
}

// Measure reads lift's results for everything the run touched and compares them with
// the truth. It first waits, up to settle, until lift counts every simulated user and
// purchase of the A/B tests (events take a few seconds through RabbitMQ and
// ClickHouse), then banditWait more so the bandit updater (every update_every) sees
// the last events.
func Measure(ctx context.Context, api API, sc Scenario, t *Truth, settle, banditWait time.Duration) (*Report, error) {
	rep := &Report{Sessions: t.Sessions, Purchases: t.Purchases, Revenue: t.Revenue, Visitors: t.Visitors}
	keys := slices.Sorted(maps.Keys(t.Experiments))
	res := map[string]results{}
	deadline := time.Now().Add(settle)
	for {
		caughtUp := true
		for _, key := range keys {
			var r results
			if err := api.get(ctx, "/api/v1/experiments/"+url.PathEscape(key)+"/results", &r); err != nil {
				return nil, fmt.Errorf("results of %s: %w", key, err)
			}
			res[key] = r
			caughtUp = caughtUp && matches(r, t.Experiments[key])
		}
		if caughtUp {
			rep.Settled = true
			break
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	if len(t.Bandits) > 0 && rep.Settled {
		// One more update of the weights (every update_every, 10 s by default) sees
		// the last events.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(banditWait):
		}
	}
	for _, key := range keys {
		rep.Experiments = append(rep.Experiments, experimentReport(key, res[key], t.Experiments[key]))
	}
	for _, key := range slices.Sorted(maps.Keys(t.Bandits)) {
		var br bandit.Report
		if err := api.get(ctx, "/api/v1/experiments/"+url.PathEscape(key)+"/bandit", &br); err != nil {
			return nil, fmt.Errorf("bandit report of %s: %w", key, err)
		}
		rep.Bandits = append(rep.Bandits, banditReportOf(key, br, t.Bandits[key]))
	}
	if sc.OfferSegment != "" {
		var st struct {
			Members int64 `json:"members"`
			Entered int64 `json:"entered_last_hour"`
		}
		if err := api.get(ctx, "/api/v1/segments/"+url.PathEscape(sc.OfferSegment)+"/stats", &st); err != nil {
			return nil, fmt.Errorf("segment %s: %w", sc.OfferSegment, err)
		}
		rep.Segments = append(rep.Segments, SegmentReport{Key: sc.OfferSegment, SimulatedQualif: t.OfferQualified,
			MeasuredEntered: st.Entered, MeasuredMembers: st.Members, OfferServed: t.OfferServed})
	}
	return rep, nil
}

func matches(r results, et *ExperimentTruth) bool {
	if len(r.Metrics) == 0 {
		return false
	}
	var users, buyers float64
	for _, v := range r.Metrics[0].Variants {
		users += v.Users
		if v.Conversions != nil {
			buyers += *v.Conversions
		}
	}
	var bought int64
	for _, n := range et.Bought {
		bought += n
	}
	return users >= float64(et.Users) && buyers >= float64(bought)
}

func experimentReport(key string, r results, et *ExperimentTruth) ExperimentReport {
	out := ExperimentReport{Key: key}
	if len(r.Metrics) == 0 {
		return out
	}
	goal := r.Metrics[0]
	control := ""
	for i, v := range goal.Variants {
		vr := VariantReport{Key: v.Key, SimulatedUsers: et.Assigned[v.Key], MeasuredUsers: v.Users,
			SimulatedBuyers: et.Bought[v.Key], TrueRate: et.TrueRate(v.Key), MeasuredRate: v.Value,
			Lift: v.Lift, CILow: v.CILow, CIHigh: v.CIHigh, PValue: v.PValue, ChanceToBeatControl: v.ChanceToBeatControl}
		if v.Conversions != nil {
			vr.MeasuredBuyers = *v.Conversions
		}
		if i == 0 {
			control = v.Key
		} else if c := et.TrueRate(control); c > 0 {
			tl := vr.TrueRate/c - 1
			vr.TrueLift = &tl
			if v.CILow != nil && v.CIHigh != nil {
				in := *v.CILow <= tl && tl <= *v.CIHigh
				vr.TrueLiftWithinCI = &in
			}
		}
		out.Variants = append(out.Variants, vr)
	}
	return out
}

func banditReportOf(key string, br bandit.Report, truth map[string]*BanditTruth) BanditReport {
	out := BanditReport{Key: key}
	for _, s := range br.Segments {
		bt := truth[s.Segment]
		if bt == nil {
			continue // no simulated user landed there
		}
		sr := BanditSegmentReport{Segment: s.Segment, SimulatedUsers: bt.Users, TrueRates: map[string]float64{},
			TrueBest: bt.Best(), PBest: map[string]float64{}, Weights: map[string]float64{}, Allocation: map[string]float64{}}
		best := -1.0
		for _, a := range s.Arms {
			sr.Exposures += a.Exposures
			sr.PBest[a.Variant], sr.Weights[a.Variant] = a.PBest, a.Weight
			sr.TrueRates[a.Variant] = bt.TrueRate(a.Variant)
			sr.Allocation[a.Variant] = float64(bt.Assigned[a.Variant]) / float64(bt.Users)
			if a.PBest > best {
				best, sr.MeasuredBest = a.PBest, a.Variant
			}
		}
		sr.Match = sr.MeasuredBest == sr.TrueBest
		out.Segments = append(out.Segments, sr)
	}
	return out
}

// Text writes the report as tables for people.
func (r *Report) Text(w io.Writer) error {
	fmt.Fprintf(w, "sessions %d, purchases %d, revenue %.2f\n", r.Sessions, r.Purchases, r.Revenue)
	var segs []string
	for _, k := range slices.Sorted(maps.Keys(r.Visitors)) {
		segs = append(segs, fmt.Sprintf("%s %d", k, r.Visitors[k]))
	}
	fmt.Fprintf(w, "visitors: %s\n", strings.Join(segs, ", "))
	if !r.Settled {
		fmt.Fprintln(w, "note: lift had not counted every simulated user and purchase when this was made")
	}
	table := func(header string, rows func(tw *tabwriter.Writer)) error {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, header)
		rows(tw)
		return tw.Flush()
	}
	for _, e := range r.Experiments {
		fmt.Fprintf(w, "\nA/B test %s, goal purchase (sim = simulated truth, lift = measured)\n", e.Key)
		err := table("variant\tusers sim/lift\tbuyers sim/lift\ttrue rate\tmeasured\ttrue lift\tmeasured lift\t95% CI\ttruth in CI", func(tw *tabwriter.Writer) {
			for _, v := range e.Variants {
				fmt.Fprintf(tw, "%s\t%d/%.0f\t%d/%.0f\t%.4f\t%.4f\t%s\t%s\t%s\t%s\n", v.Key, v.SimulatedUsers, v.MeasuredUsers,
					v.SimulatedBuyers, v.MeasuredBuyers, v.TrueRate, v.MeasuredRate, pct(v.TrueLift), pct(v.Lift), ci(v.CILow, v.CIHigh), yesNo(v.TrueLiftWithinCI))
			}
		})
		if err != nil {
			return err
		}
	}
	for _, b := range r.Bandits {
		for _, s := range b.Segments {
			name := s.Segment
			if name == "" {
				name = "global"
			}
			fmt.Fprintf(w, "\nbandit %s, segment %s: %d users; lift's best (P(best)) %s, true best %s: %s\n", b.Key, name,
				s.SimulatedUsers, s.MeasuredBest, s.TrueBest, map[bool]string{true: "match", false: "MISMATCH"}[s.Match])
			err := table("arm\ttrue click rate\tP(best)\tweight now\tserved", func(tw *tabwriter.Writer) {
				for _, arm := range slices.Sorted(maps.Keys(s.TrueRates)) {
					fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.1f%%\n", arm, s.TrueRates[arm], s.PBest[arm], s.Weights[arm], 100*s.Allocation[arm])
				}
			})
			if err != nil {
				return err
			}
		}
	}
	for _, s := range r.Segments {
		fmt.Fprintf(w, "\nsegment %s: %d visitors qualified in the simulation; lift: %d entered in the last hour, %d members now; offer served %d times\n",
			s.Key, s.SimulatedQualif, s.MeasuredEntered, s.MeasuredMembers, s.OfferServed)
	}
	return nil
}

func pct(p *float64) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf("%+.1f%%", 100**p)
}

func ci(lo, hi *float64) string {
	if lo == nil || hi == nil {
		return "—"
	}
	return fmt.Sprintf("[%+.1f%%, %+.1f%%]", 100**lo, 100**hi)
}

func yesNo(b *bool) string {
	switch {
	case b == nil:
		return "—"
	case *b:
		return "yes"
	}
	return "NO"
}
