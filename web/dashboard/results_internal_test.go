package dashboard

import (
	"context"
	"testing"
	"time"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/stats"
)

// slowReader answers with users once release is closed.
type slowReader struct {
	users   float64
	release chan struct{}
}

func (r *slowReader) Results(ctx context.Context, key string) (experiments.Results, error) {
	<-r.release
	return experiments.Results{Experiment: key, Users: r.users}, nil
}

// TestCacheKeepsNewerResults: a background computation that started before the
// experiment page stored newer results must not overwrite them when it ends.
func TestCacheKeepsNewerResults(t *testing.T) {
	t.Parallel()
	r := &slowReader{users: 0, release: make(chan struct{})}
	c := newResultsCache(r)
	done := c.refresh("hero")
	time.Sleep(time.Millisecond)
	c.put("hero", experiments.Results{Experiment: "hero", Users: 42})
	close(r.release)
	<-done
	if res, ok := c.get("hero"); !ok || res.Users != 42 {
		t.Errorf("after a stale background result: %+v %v, want the 42 users stored meanwhile", res, ok)
	}
	// Fresh entries are not recomputed; the same pending computation is shared.
	if ch := c.refresh("hero"); ch != closed {
		t.Error("a fresh entry started a computation")
	}
	r2 := &slowReader{users: 7, release: make(chan struct{})}
	c2 := newResultsCache(r2)
	if a, b := c2.refresh("x"), c2.refresh("x"); a != b {
		t.Error("two computations for one experiment")
	}
	close(r2.release)
}

func TestFormats(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ got, want string }{
		{count(1234567), "1,234,567"}, {count(0), "0"}, {count(999), "999"},
		{signedPercent(0.1234), "+12.3%"}, {signedPercent(-0.05), "−5.0%"}, {signedPercent(-0.0001), "0.0%"},
		{pValue(0.0004), "< 0.001"}, {pValue(0.0456), "0.046"},
		{window("168h0m0s"), "7 days"}, {window("2h0m0s"), "2 hours"},
		{fixedPercent(0.1), "10.00%"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestRateIntervalsStayInRange: a conversion rate's interval is shown within [0, 1]
// (the normal approximation reaches below zero with few users); a value metric's is
// shown as computed.
func TestRateIntervalsStayInRange(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	arms := []stats.VariantResult{
		{Key: "a", Value: 0.027, ValueCILow: f(-0.0499), ValueCIHigh: f(0.1043)},
		{Key: "b", Value: 0.98, ValueCILow: f(0.95), ValueCIHigh: f(1.01)},
	}
	rows := variantRows("conversion", arms, "")
	if rows[0].ValueCI != "0.00% to 10.43%" || rows[1].ValueCI != "95.00% to 100.00%" {
		t.Errorf("conversion intervals %q, %q", rows[0].ValueCI, rows[1].ValueCI)
	}
	rows = variantRows("value", []stats.VariantResult{{Key: "a", Value: 1, ValueCILow: f(-2), ValueCIHigh: f(4)}}, "")
	if rows[0].ValueCI != "-2.00 to 4.00" {
		t.Errorf("value interval %q", rows[0].ValueCI)
	}
}
