package testenv_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/testenv"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends the
// goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// eventually runs testenv.Eventually on a fatalRecorder in its own goroutine and
// returns what it returned and the failure message, if any.
func eventually(limit time.Duration, what string, cond func() bool) (took time.Duration, failure string) {
	r := &fatalRecorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		took = testenv.Eventually(r, limit, what, cond)
	}()
	<-done
	return took, r.msg
}

func TestEventually(t *testing.T) {
	t.Parallel()
	calls := 0
	took, failure := eventually(5*time.Second, "the third call", func() bool { calls++; return calls == 3 })
	if failure != "" {
		t.Fatalf("failed: %s", failure)
	}
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
	if took <= 0 || took > 5*time.Second {
		t.Errorf("returned %v, want the time until the third call", took)
	}
}

func TestEventuallyTimesOut(t *testing.T) {
	t.Parallel()
	start := time.Now()
	var last time.Time
	_, failure := eventually(50*time.Millisecond, "the impossible", func() bool { last = time.Now(); return false })
	if want := "timed out after 50ms waiting for the impossible"; failure != want {
		t.Errorf("failure %q, want %q", failure, want)
	}
	// It gives cond a last chance once the limit has passed, so a condition that
	// becomes true in time is never reported as late.
	if last.Sub(start) < 50*time.Millisecond {
		t.Errorf("last call %v after the start, want one after the limit", last.Sub(start))
	}
}

func TestEventuallyImmediate(t *testing.T) {
	t.Parallel()
	_, failure := eventually(0, "something true", func() bool { return true })
	if failure != "" {
		t.Errorf("a true condition failed: %s", failure)
	}
}

func TestPoll(t *testing.T) {
	t.Parallel()
	calls := 0
	if !testenv.Poll(5*time.Second, func() bool { calls++; return calls == 4 }) {
		t.Errorf("Poll reported false for a condition that became true")
	}
	if calls != 4 {
		t.Errorf("cond called %d times, want 4", calls)
	}
	if testenv.Poll(30*time.Millisecond, func() bool { return false }) {
		t.Errorf("Poll reported true for a condition that never held")
	}
}
