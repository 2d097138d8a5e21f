package testenv

import (
	"testing"
	"time"
)

// Eventually calls cond until it returns true and returns how long that took. If
// cond is still false once limit has passed (it is called once more then), it fails
// t with "timed out after <limit> waiting for <what>": name in what the state
// awaited ("the exposure in ClickHouse"), so that the failure says what never
// happened. Like t.Fatal, it must be called from the goroutine running the test.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	if !Poll(limit, cond) {
		t.Fatalf("timed out after %v waiting for %s", limit, what)
	}
	return time.Since(start)
}

// Poll calls cond until it returns true or limit has passed, and reports whether
// it returned true. It is Eventually for callers that fail with a message of their
// own (one showing the last value seen) or that are not tests. It calls cond every
// 10 ms at first, then less often, at most 100 ms apart, and once more at the limit,
// so that a condition that holds in time is never reported late.
func Poll(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	interval := 10 * time.Millisecond
	for !cond() {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(interval, left))
		interval = min(2*interval, 100*time.Millisecond)
	}
	return true
}
