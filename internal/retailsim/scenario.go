// Package retailsim simulates a retail site's visitors against a running lift, through
// the Go client, with a known truth: each visitor's conversion probabilities follow
// from their segment (new or returning, device) and from true effects of the variants
// they are served. `lift simulate` runs it and compares what lift measured (lifts and
// their confidence intervals, bandit allocations, segment sizes) with that truth.
package retailsim

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"time"
)

// Scenario describes the simulated site. Segment names used as keys are "new",
// "returning", the device names and "all" (everyone).
type Scenario struct {
	// ReturningShare is the share of visitors who have been before (attribute
	// returning: true, visits ≥ 2).
	ReturningShare float64 `json:"returning_share"`
	// Devices maps device names (attribute device) to their share of visitors.
	Devices map[string]float64 `json:"devices"`
	// Countries maps countries (attribute country) to their share; optional.
	Countries map[string]float64 `json:"countries,omitempty"`
	// ProductViews is the mean number of product views after the first, per segment
	// (Poisson); factors of every segment the visitor is in multiply.
	ProductViews map[string]float64 `json:"product_views"`
	// Cart is the probability of adding to the cart, per segment (multiplied).
	Cart map[string]float64 `json:"cart"`
	// Purchase is the base probability of a purchase, per segment (multiplied): "all"
	// is the base rate, the others are factors.
	Purchase map[string]float64 `json:"purchase"`
	// OrderValue is the mean and standard deviation of a purchase's value (log-normal).
	OrderValue struct {
		Mean float64 `json:"mean"`
		SD   float64 `json:"sd"`
	} `json:"order_value"`
	// Effects are the true effects of experiment and flag variants on the purchase
	// probability: Effects[key][variant][segment] = factor. Variants not listed have
	// factor 1.
	Effects map[string]map[string]map[string]float64 `json:"effects"`
	// Bandits are the true click rates of recommendation blocks chosen by bandits:
	// Bandits[key][arm][segment] = P(click); the visitor's most specific listed
	// segment wins (device over new/returning over all).
	Bandits map[string]map[string]map[string]float64 `json:"bandits"`
	// Offer names a flag served to a behavioural segment (such as a discount for
	// High Intent): after their product views a visitor asks lift again, and the
	// variant served has its Effects. Empty: no second decision.
	Offer string `json:"offer,omitempty"`
	// OfferSegment is the behavioural segment the offer is for; visitors qualifying
	// by the simulation's own count (OfferViews product views) are reported beside
	// lift's count of members.
	OfferSegment string `json:"offer_segment,omitempty"`
	OfferViews   int    `json:"offer_views,omitempty"`
	// Recommendations, when set, shows every visitor a block of recommended
	// products after their views, from an experiment whose arms choose the strategy.
	Recommendations *Recommendations `json:"recommendations,omitempty"`
}

// Recommendations is the recommendation block of a scenario. Visitors have hidden
// tastes (tastes.go): the more the products shown appeal to them, the more they buy
// (purchase probability × (1 + Boost × appeal), appeal the mean over Slots places),
// and they view the most appealing one with probability Click × appeal. The
// simulation asks lift what each arm would show the visitor, so the true rate of
// each arm is known even though it depends on what lift has learnt.
type Recommendations struct {
	Recommender string `json:"recommender"`
	Experiment  string `json:"experiment"`
	// Arms maps each variant of the experiment to the strategy its value names
	// ("similar" or "popular").
	Arms  map[string]string `json:"arms"`
	Slots int               `json:"slots"`
	Boost float64           `json:"boost"`
	Click float64           `json:"click"`
	// Wait is how long after their views a visitor asks for recommendations (Go
	// duration, default "1s": the segment engine publishes the recent items within
	// a second).
	Wait string `json:"wait,omitempty"`
}

// Retail is the demo's scenario (make run): hero banner +12% purchases (+25% on
// mobile), free shipping +8%, the High Intent discount +30%, recommendation blocks
// whose best differs between new and returning visitors.
func Retail() Scenario {
	var s Scenario
	if err := json.Unmarshal([]byte(retailJSON), &s); err != nil {
		panic("retailsim: built-in scenario: " + err.Error())
	}
	return s
}

const retailJSON = `{
 "returning_share": 0.35,
 "devices": {"mobile": 0.6, "desktop": 0.4},
 "countries": {"US": 0.5, "GB": 0.2, "DE": 0.15, "CA": 0.15},
 "product_views": {"all": 1.6, "returning": 1.5},
 "cart": {"all": 0.22, "returning": 1.4, "desktop": 1.2},
 "purchase": {"all": 0.06, "returning": 1.6, "mobile": 0.8, "desktop": 1.3},
 "order_value": {"mean": 64, "sd": 30},
 "effects": {
  "hero-banner": {"bold": {"all": 1.12, "mobile": 1.1}},
  "free-shipping": {"on": {"all": 1.08}, "beta": {"all": 1.08}},
  "discount-offer": {"discount": {"all": 1.3}}
 },
 "bandits": {
  "recommendations": {
   "trending":    {"new": 0.10, "returning": 0.05},
   "similar":     {"new": 0.05, "returning": 0.12},
   "bestsellers": {"new": 0.07, "returning": 0.07}
  }
 },
 "offer": "discount-offer",
 "offer_segment": "high-intent",
 "offer_views": 3,
 "recommendations": {"recommender": "similar", "experiment": "recs-vs-popular",
  "arms": {"popular": "popular", "similar": "similar"}, "slots": 4, "boost": 1, "click": 0.3}
}`

// Load reads a scenario from a JSON file.
func Load(path string) (Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, err
	}
	var s Scenario
	if err := json.Unmarshal(data, &s); err != nil {
		return Scenario{}, fmt.Errorf("scenario %s: %w", path, err)
	}
	return s, s.Validate()
}

// Validate reports the first problem of a scenario, naming the field.
func (s Scenario) Validate() error {
	if !(s.ReturningShare >= 0 && s.ReturningShare <= 1) {
		return fmt.Errorf("returning_share: must be between 0 and 1, got %v", s.ReturningShare)
	}
	for name, shares := range map[string]map[string]float64{"devices": s.Devices, "countries": s.Countries} {
		if name == "devices" && len(shares) == 0 {
			return fmt.Errorf("devices: at least one device is required")
		}
		if len(shares) == 0 {
			continue
		}
		sum := 0.0
		for k, v := range shares {
			if !(v >= 0) {
				return fmt.Errorf("%s.%s: must be ≥ 0", name, k)
			}
			sum += v
		}
		if math.Abs(sum-1) > 1e-6 {
			return fmt.Errorf("%s: shares must sum to 1, got %v", name, sum)
		}
	}
	if s.Purchase["all"] <= 0 || s.Purchase["all"] > 1 {
		return fmt.Errorf("purchase.all: the base purchase probability must be in (0, 1]")
	}
	if s.OrderValue.Mean <= 0 || s.OrderValue.SD < 0 {
		return fmt.Errorf("order_value: mean must be > 0 and sd ≥ 0")
	}
	for key, arms := range s.Bandits {
		for arm, rates := range arms {
			for seg, p := range rates {
				if !(p >= 0 && p <= 1) {
					return fmt.Errorf("bandits.%s.%s.%s: a click rate must be between 0 and 1", key, arm, seg)
				}
			}
		}
	}
	if s.Offer != "" && s.OfferViews <= 0 {
		return fmt.Errorf("offer_views: must be > 0 when offer is set")
	}
	if r := s.Recommendations; r != nil {
		switch {
		case r.Recommender == "" || r.Experiment == "":
			return fmt.Errorf("recommendations: recommender and experiment are required")
		case len(r.Arms) < 2:
			return fmt.Errorf("recommendations.arms: map at least two variants to a strategy")
		case r.Slots < 1 || r.Slots > 20:
			return fmt.Errorf("recommendations.slots: must be from 1 to 20")
		case !(r.Boost >= 0) || !(r.Click >= 0 && r.Click <= 1):
			return fmt.Errorf("recommendations: boost must be ≥ 0 and click between 0 and 1")
		}
		for v, strategy := range r.Arms {
			if strategy != "similar" && strategy != "popular" {
				return fmt.Errorf("recommendations.arms.%s: must be \"similar\" or \"popular\"", v)
			}
		}
		if r.Wait != "" {
			if d, err := time.ParseDuration(r.Wait); err != nil || d < 0 {
				return fmt.Errorf("recommendations.wait: must be a duration such as \"1s\"")
			}
		}
	}
	return nil
}

// Visitor is one simulated visitor's segment.
type Visitor struct {
	Returning bool
	Device    string
	Country   string
}

// segments lists the segment names that apply, least specific first.
func (v Visitor) segments() []string {
	seg := "new"
	if v.Returning {
		seg = "returning"
	}
	return []string{"all", seg, v.Device}
}

// product multiplies the factors of every segment of v found in m (1 when none).
func product(m map[string]float64, v Visitor) float64 {
	f := 1.0
	for _, s := range v.segments() {
		if x, ok := m[s]; ok {
			f *= x
		}
	}
	return f
}

// clickRate is the rate of the most specific segment of v listed for an arm.
func clickRate(rates map[string]float64, v Visitor) float64 {
	segs := v.segments()
	for i := len(segs) - 1; i >= 0; i-- {
		if p, ok := rates[segs[i]]; ok {
			return p
		}
	}
	return 0
}

// effect is the purchase factor of serving variant of key to v.
func (s Scenario) effect(key, variant string, v Visitor) float64 {
	m, ok := s.Effects[key][variant]
	if !ok {
		return 1
	}
	return product(m, v)
}

// pick draws a key from shares with u uniform in [0,1), in sorted key order so a
// seed gives the same visitors on every run.
func pick(shares map[string]float64, u float64) string {
	keys := make([]string, 0, len(shares))
	for k := range shares {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if u < shares[k] {
			return k
		}
		u -= shares[k]
	}
	if len(keys) == 0 {
		return ""
	}
	return keys[len(keys)-1]
}
