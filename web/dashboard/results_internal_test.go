package dashboard

import (
	"context"
	"testing"
	"time"

	"github.com/liftlab/lift/experiments"
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
