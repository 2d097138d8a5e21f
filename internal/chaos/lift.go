package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary builds cmd/lift once per test run (without -race: the suite measures
// lift's behaviour under faults, not the race detector's).
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lift-chaos-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "lift")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/liftlab/lift/cmd/lift").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("chaos: %v", buildErr)
	}
	return binary
}

// Lift is one `lift serve` child process.
type Lift struct {
	t    testing.TB
	Name string
	Role string
	env  map[string]string
	log  string // its stderr, appended across restarts

	proc *child
	URL  string
}

// StartLift runs `lift serve --role role` with env (LIFT_HTTP_ADDR is chosen here)
// and waits until it listens. It is killed when the test ends.
func StartLift(t testing.TB, name, role string, env map[string]string) *Lift {
	t.Helper()
	l := &Lift{t: t, Name: name, Role: role, env: env, log: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		if l.Running() {
			l.Kill()
		}
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", name, l.tail(4000))
		}
	})
	l.Start()
	return l
}

// Start starts the process (again, after Kill or Stop) on the same address if it had
// one.
func (l *Lift) Start() {
	l.t.Helper()
	addr := "127.0.0.1:0"
	if l.URL != "" {
		addr = strings.TrimPrefix(l.URL, "http://")
	}
	env := os.Environ()
	for k, v := range l.env {
		env = append(env, k+"="+v)
	}
	env = append(env, "LIFT_HTTP_ADDR="+addr)
	cmd := exec.Command(Binary(l.t), "serve", "--role", l.Role)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	if l.proc, err = startChild(cmd, l.log); err != nil {
		l.t.Fatalf("chaos: start lift %s: %v", l.Name, err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lines:
		url, found := strings.CutPrefix(line, "lift listening on ")
		if !ok || !found {
			<-l.proc.exited
			l.t.Fatalf("chaos: lift %s did not start: %q\n%s", l.Name, line, l.tail(3000))
		}
		l.URL = url
	case <-time.After(2 * time.Minute):
		l.t.Fatalf("chaos: lift %s did not listen within 2 minutes\n%s", l.Name, l.tail(3000))
	}
}

// Running reports whether the process is alive.
func (l *Lift) Running() bool { return l.proc.alive() }

// Kill sends SIGKILL: a crash, nothing drained.
func (l *Lift) Kill() { l.signal(syscall.SIGKILL) }

// Stop sends SIGTERM: a graceful shutdown.
func (l *Lift) Stop() { l.signal(syscall.SIGTERM) }

func (l *Lift) signal(sig syscall.Signal) {
	l.t.Helper()
	_ = l.proc.cmd.Process.Signal(sig)
	select {
	case <-l.proc.exited:
	case <-time.After(time.Minute):
		l.proc.signalGroup(syscall.SIGKILL)
		<-l.proc.exited
		l.t.Errorf("chaos: lift %s did not exit within a minute of %v", l.Name, sig)
	}
}

// Metric returns the sum of every series of the named metric on /metrics whose
// labels contain labels (e.g. `name="lift.bandit-updater"`, or "" for all).
func (l *Lift) Metric(name, labels string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.URL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest[0] != ' ' && rest[0] != '{') || !strings.Contains(rest, labels) {
			continue
		}
		v, err := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("no series %s{%s}", name, labels)
	}
	return sum, nil
}

// LogCount counts the occurrences of s in the process's log (all its runs).
func (l *Lift) LogCount(s string) int {
	b, _ := os.ReadFile(l.log)
	return strings.Count(string(b), s)
}

func (l *Lift) tail(n int) string {
	b, _ := os.ReadFile(l.log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
