package retailsim

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// The draws behind the simulated visitors: seeded, with stated tolerances.
func TestDraws(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 200_000
	var views, value float64
	devices := map[string]int{}
	for range n {
		views += float64(poisson(1.6, rng.Float64()))
		value += logNormal(64, 30, rng.NormFloat64())
		devices[pick(map[string]float64{"mobile": 0.6, "desktop": 0.4}, rng.Float64())]++
	}
	if m := views / n; math.Abs(m-1.6) > 0.02 {
		t.Errorf("Poisson mean %.3f, want 1.6 ± 0.02", m)
	}
	if m := value / n; math.Abs(m-64) > 0.5 {
		t.Errorf("log-normal mean %.2f, want 64 ± 0.5", m)
	}
	if s := float64(devices["mobile"]) / n; math.Abs(s-0.6) > 0.005 {
		t.Errorf("mobile share %.4f, want 0.6 ± 0.005", s)
	}
}

func TestFactors(t *testing.T) {
	sc := Retail()
	mobileNew := Visitor{Device: "mobile"}
	desktopReturning := Visitor{Returning: true, Device: "desktop"}
	if p := product(sc.Purchase, mobileNew); math.Abs(p-0.06*0.8) > 1e-12 {
		t.Errorf("new mobile purchase rate %v", p)
	}
	if f := sc.effect("hero-banner", "bold", mobileNew); math.Abs(f-1.12*1.1) > 1e-12 {
		t.Errorf("bold on mobile %v, want 1.12 × 1.1", f)
	}
	if f := sc.effect("hero-banner", "control", mobileNew); f != 1 {
		t.Errorf("control factor %v, want 1", f)
	}
	if r := clickRate(sc.Bandits["recommendations"]["similar"], desktopReturning); r != 0.12 {
		t.Errorf("similar for returning %v, want 0.12", r)
	}
	b := &BanditTruth{Users: 2, Expected: map[string]float64{"a": 0.1, "b": 0.3, "c": 0.2}}
	if b.Best() != "b" || math.Abs(b.TrueRate("b")-0.15) > 1e-12 {
		t.Errorf("bandit truth: best %s, rate %v", b.Best(), b.TrueRate("b"))
	}
}

func TestValidate(t *testing.T) {
	tests := map[string]func(s *Scenario){
		"returning_share": func(s *Scenario) { s.ReturningShare = 1.5 },
		"devices":         func(s *Scenario) { s.Devices = map[string]float64{"mobile": 0.7, "desktop": 0.4} },
		"purchase.all":    func(s *Scenario) { s.Purchase = map[string]float64{"mobile": 2} },
		"order_value":     func(s *Scenario) { s.OrderValue.Mean = 0 },
		"bandits.recommendations.trending.new": func(s *Scenario) {
			s.Bandits["recommendations"]["trending"]["new"] = 2
		},
		"offer_views": func(s *Scenario) { s.OfferViews = 0 },
	}
	if err := Retail().Validate(); err != nil {
		t.Fatalf("built-in scenario: %v", err)
	}
	for field, breakIt := range tests {
		s := Retail()
		breakIt(&s)
		if err := s.Validate(); err == nil || !strings.HasPrefix(err.Error(), field) {
			t.Errorf("%s: error %v, want one naming the field", field, err)
		}
	}
}
