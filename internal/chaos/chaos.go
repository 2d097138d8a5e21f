// Package chaos is the machinery of lift's reliability suite (`make chaos`, and a
// reduced run inside `make test`): private instances of RabbitMQ, ClickHouse and
// Postgres that a scenario may kill, stop or put under a resource alarm without
// touching the shared servers other tests use; toxiproxy proxies (in process) for
// network faults; lift itself as real child processes that can be killed with
// SIGKILL; an event stream that remembers which events lift acknowledged; and the
// figures each scenario prints (accepted, stored, lost, duplicated after FINAL, time
// to recover).
//
// Private instances run from Debian's packages (the ones scripts/services installs)
// on free loopback ports with their data in the test's temporary directory, and are
// killed when the test ends.
package chaos

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// Full reports whether the suite runs at the sizes of the issue (LIFT_CHAOS=full,
// what `make chaos` sets) rather than the reduced sizes `make test` runs.
func Full() bool { return os.Getenv("LIFT_CHAOS") == "full" }

// Size picks the reduced or the full value.
func Size[T any](reduced, full T) T {
	if Full() {
		return full
	}
	return reduced
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("chaos: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// portOpen reports whether something accepts connections on addr.
func portOpen(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Figures are what a scenario reports.
type Figures struct {
	Scenario   string
	Accepted   int           // events lift answered 202 for
	Stored     int           // of those, events found in ClickHouse (FINAL)
	Lost       int           // accepted but not stored
	Duplicated int           // rows beyond one per event_id visible with FINAL
	RawDups    int           // the same without FINAL (merges not done yet): informative
	Recover    time.Duration // from the end of the fault to the figure Notes names
	Notes      []string      // scenario-specific figures
	NoEvents   bool          // the scenario streams no events: print no event figures
}

// String is the one line `make chaos` prints per scenario.
func (f Figures) String() string {
	s := fmt.Sprintf("CHAOS %-26s accepted=%d stored=%d lost=%d duplicated_after_final=%d raw_duplicates=%d recover=%s",
		f.Scenario, f.Accepted, f.Stored, f.Lost, f.Duplicated, f.RawDups, f.Recover.Round(10*time.Millisecond))
	if f.NoEvents {
		s = fmt.Sprintf("CHAOS %-26s recover=%s", f.Scenario, f.Recover.Round(10*time.Millisecond))
	}
	if len(f.Notes) > 0 {
		s += " | " + strings.Join(f.Notes, "; ")
	}
	return s
}
