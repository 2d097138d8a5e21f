package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/testenv"
)

const rabbitBin = "/usr/lib/rabbitmq/bin/"

// Rabbit is a private RabbitMQ node: its own node name, AMQP and distribution ports,
// data and log directories and Erlang cookie, no plugins (so no management port).
// It registers with the machine's epmd like any node and shares nothing else with
// the shared broker.
type Rabbit struct {
	t       testing.TB
	dir     string
	Node    string
	Port    int
	env     []string
	proc    *child
	started time.Time
}

// StartRabbit boots a private node and kills it when the test ends. ConsumerTimeout
// is the broker's consumer_timeout (deliveries unacknowledged for longer close the
// channel), checked every quarter of it (at least every second, at most every
// minute).
func StartRabbit(t testing.TB, consumerTimeout time.Duration) *Rabbit {
	t.Helper()
	testenv.Integration(t) // before the slow start, not after
	dir := t.TempDir()
	r := &Rabbit{t: t, dir: dir, Port: freePort(t)}
	dist := freePort(t)
	r.Node = fmt.Sprintf("liftchaos%d@localhost", r.Port)
	conf := fmt.Sprintf("listeners.tcp.local = 127.0.0.1:%d\nconsumer_timeout = %d\n", r.Port, consumerTimeout.Milliseconds())
	// Channels check the consumer timeout on their tick, once a minute by default,
	// so a timeout under a minute needs a faster tick to fire when it says.
	tick := min(time.Minute, max(consumerTimeout/4, time.Second))
	advanced := fmt.Sprintf("[{rabbit, [{channel_tick_interval, %d}]}].\n", tick.Milliseconds())
	for name, content := range map[string]string{"rabbitmq.conf": conf, "advanced.config": advanced,
		"enabled_plugins": "[].\n", "rabbitmq-env.conf": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.env = append(os.Environ(),
		"HOME="+dir, // the Erlang cookie lives here, for the node and its rabbitmqctl alike
		"RABBITMQ_NODENAME="+r.Node,
		"RABBITMQ_NODE_PORT="+strconv.Itoa(r.Port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(dist),
		// rabbitmqctl picks its own distribution port in this range.
		"RABBITMQ_CTL_DIST_PORT_MIN="+strconv.Itoa(dist+1), "RABBITMQ_CTL_DIST_PORT_MAX="+strconv.Itoa(dist+11),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "pid"),
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
	t.Cleanup(func() {
		if r.running() {
			r.Kill()
		}
	})
	r.Start()
	return r
}

// Start boots the node (again, after Kill) and waits until it accepts connections.
func (r *Rabbit) Start() {
	r.t.Helper()
	if r.running() {
		r.t.Fatal("chaos: rabbit already running")
	}
	cmd := exec.Command(rabbitBin + "rabbitmq-server")
	cmd.Env, cmd.Dir = r.env, r.dir
	proc, err := startChild(cmd, filepath.Join(r.dir, "server.log"))
	if err != nil {
		r.t.Fatalf("chaos: start rabbitmq-server: %v", err)
	}
	r.proc = proc
	// await_startup fails at once until the node has registered with epmd.
	if !testenv.Poll(3*time.Minute, func() bool {
		err = r.ctl(time.Minute, "await_startup")
		return err == nil || !r.running()
	}) || err != nil {
		r.t.Fatalf("chaos: private RabbitMQ did not start: %v\n%s", err, r.tail())
	}
	if !testenv.Poll(time.Minute, func() bool { return portOpen(r.Addr()) }) {
		r.t.Fatalf("chaos: private RabbitMQ does not listen on %s\n%s", r.Addr(), r.tail())
	}
	r.started = time.Now()
}

func (r *Rabbit) running() bool { return r.proc.alive() }

// Kill sends SIGKILL to the node's Erlang VM and waits until it is gone.
func (r *Rabbit) Kill() {
	r.t.Helper()
	if pid, err := os.ReadFile(filepath.Join(r.dir, "pid")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
			_ = syscall.Kill(n, syscall.SIGKILL)
		}
	}
	// The start script and anything else it started are in the process group.
	r.proc.signalGroup(syscall.SIGKILL)
	select {
	case <-r.proc.exited:
	case <-time.After(30 * time.Second):
		r.t.Fatal("chaos: private RabbitMQ survived SIGKILL")
	}
	_ = os.Remove(filepath.Join(r.dir, "pid"))
}

// Addr is the node's AMQP address.
func (r *Rabbit) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is the amqp:// URL of vhost ("/" for the default one).
func (r *Rabbit) URL(vhost string) string {
	if vhost == "/" {
		vhost = ""
	}
	return fmt.Sprintf("amqp://guest:guest@%s/%s", r.Addr(), vhost)
}

// AddVhost creates a vhost guest may use and returns its URL.
func (r *Rabbit) AddVhost(name string) string {
	r.t.Helper()
	if err := r.ctl(time.Minute, "add_vhost", name); err != nil {
		r.t.Fatal(err)
	}
	if err := r.ctl(time.Minute, "set_permissions", "-p", name, "guest", ".*", ".*", ".*"); err != nil {
		r.t.Fatal(err)
	}
	return r.URL(name)
}

// MemoryAlarm raises (on) or clears the node's memory alarm by moving its
// high watermark: while it is raised the broker blocks every publishing connection.
func (r *Rabbit) MemoryAlarm(on bool) error {
	watermark := "0.4"
	if on {
		watermark = "0.000001"
	}
	return r.ctl(time.Minute, "set_vm_memory_high_watermark", watermark)
}

func (r *Rabbit) ctl(limit time.Duration, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, rabbitBin+"rabbitmqctl", append([]string{"-q", "-n", r.Node}, args...)...)
	cmd.Env = r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("rabbitmqctl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (r *Rabbit) tail() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "server.log"))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// MemoryAlarmSetAt reads from the node's log when its memory alarm last went off,
// waiting a few seconds for the logger to write it.
func (r *Rabbit) MemoryAlarmSetAt() (time.Time, error) {
	var at time.Time
	testenv.Poll(10*time.Second, func() bool { at = r.alarmInLog(); return !at.IsZero() })
	if at.IsZero() {
		return at, fmt.Errorf("chaos: no memory alarm in the log of %s", r.Node)
	}
	return at, nil
}

func (r *Rabbit) alarmInLog() time.Time {
	b, _ := os.ReadFile(filepath.Join(r.dir, "log", r.Node+".log"))
	var at time.Time
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "memory resource limit alarm set") {
			continue
		}
		// 2026-12-01 21:36:33.400621+00:00 [warning] <0.291.0> memory resource ...
		if len(line) < 32 {
			continue
		}
		if t, err := time.Parse("2006-01-02 15:04:05.999999-07:00", line[:32]); err == nil {
			at = t
		}
	}
	return at
}
