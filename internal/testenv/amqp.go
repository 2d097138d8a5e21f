package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// AMQPURL creates a fresh RabbitMQ vhost lift_test_<random hex> on the broker of
// $LIFT_TEST_AMQP_URL, grants the URL's user full permissions on it and returns the
// amqp:// URL of that vhost. The vhost, with everything declared in it, is deleted when
// the test ends.
//
// Vhosts are managed through the management HTTP API when it answers, and otherwise
// with rabbitmqctl on this machine, so no broker plugin is required.
func AMQPURL(t testing.TB) string {
	t.Helper()
	Integration(t)
	base := getenv("LIFT_TEST_AMQP_URL", defaultAMQPURL)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") {
		t.Fatalf("testenv: LIFT_TEST_AMQP_URL=%q is not an amqp:// URL", base)
	}

	conn, err := dialAMQP(base)
	if err != nil {
		t.Fatalf("testenv: RabbitMQ unreachable at %s: %v\n%s", u.Redacted(), err, hint)
	}
	conn.Close()

	user := "guest"
	var pass string
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	} else {
		pass = "guest"
	}
	mgr := vhostManagerFor(u, user, pass)

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	name := uniqueName(t, "lift_test_")
	if err := mgr.create(ctx, name, user); err != nil {
		t.Fatalf("testenv: create RabbitMQ vhost %s: %v\n%s", name, err, hint)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := mgr.delete(ctx, name); err != nil {
			t.Errorf("testenv: delete RabbitMQ vhost %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// AMQPChannel opens a channel in publisher-confirm mode on a connection of its own to
// url, closed when the test ends, after declare (e.g. amqpbus.Declare) ran on it.
func AMQPChannel(t testing.TB, url string, declare func(*amqp.Channel) error) *amqp.Channel {
	t.Helper()
	conn, err := dialAMQP(url)
	if err != nil {
		t.Fatalf("testenv: RabbitMQ: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err == nil {
		err = declare(ch)
	}
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		t.Fatalf("testenv: RabbitMQ channel: %v", err)
	}
	return ch
}

// QueueDepth is the number of ready messages in queue of the vhost at url.
func QueueDepth(t testing.TB, url, queue string) int {
	t.Helper()
	conn, err := dialAMQP(url)
	if err != nil {
		t.Fatalf("testenv: RabbitMQ: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("testenv: RabbitMQ channel: %v", err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("testenv: inspect %s: %v", queue, err)
	}
	return q.Messages
}

func dialAMQP(u string) (*amqp.Connection, error) {
	return amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(pingTimeout)})
}

type vhostManager interface {
	create(ctx context.Context, vhost, user string) error
	delete(ctx context.Context, vhost string) error
}

var (
	probeOnce  sync.Once
	probedMgmt bool
)

// vhostManagerFor picks the management API when $LIFT_TEST_RABBITMQ_API is set or the
// default one answers, and rabbitmqctl otherwise.
func vhostManagerFor(amqpURL *url.URL, user, pass string) vhostManager {
	if api := getenv("LIFT_TEST_RABBITMQ_API", ""); api != "" {
		return &mgmtAPI{base: strings.TrimRight(api, "/"), user: user, pass: pass}
	}
	api := &mgmtAPI{base: "http://" + net.JoinHostPort(amqpURL.Hostname(), "15672"), user: user, pass: pass}
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		probedMgmt = api.do(ctx, http.MethodGet, "/api/overview", nil) == nil
	})
	if probedMgmt {
		return api
	}
	return rabbitmqctl{}
}

// mgmtAPI manages vhosts through the RabbitMQ management plugin's HTTP API.
type mgmtAPI struct {
	base       string
	user, pass string
}

func (m *mgmtAPI) create(ctx context.Context, vhost, user string) error {
	if err := m.do(ctx, http.MethodPut, "/api/vhosts/"+url.PathEscape(vhost), []byte(`{}`)); err != nil {
		return err
	}
	return m.do(ctx, http.MethodPut,
		"/api/permissions/"+url.PathEscape(vhost)+"/"+url.PathEscape(user),
		[]byte(`{"configure":".*","write":".*","read":".*"}`))
}

func (m *mgmtAPI) delete(ctx context.Context, vhost string) error {
	return m.do(ctx, http.MethodDelete, "/api/vhosts/"+url.PathEscape(vhost), nil)
}

func (m *mgmtAPI) do(ctx context.Context, method, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, m.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(m.user, m.pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("management API: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("management API: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// rabbitmqctl manages vhosts with the broker's CLI, which needs no plugin but must run
// on the broker's machine (as root or rabbitmq). Each call takes about a second.
type rabbitmqctl struct{}

func (rabbitmqctl) create(ctx context.Context, vhost, user string) error {
	if err := runCtl(ctx, "add_vhost", vhost); err != nil {
		return err
	}
	return runCtl(ctx, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
}

func (rabbitmqctl) delete(ctx context.Context, vhost string) error {
	return runCtl(ctx, "delete_vhost", vhost)
}

func runCtl(ctx context.Context, args ...string) error {
	path, err := exec.LookPath("rabbitmqctl")
	if err != nil {
		// /usr/sbin is not on every user's PATH.
		path = "/usr/sbin/rabbitmqctl"
	}
	out, err := exec.CommandContext(ctx, path, append([]string{"-q"}, args...)...).CombinedOutput()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rabbitmqctl not found and the management API does not answer: %w", err)
		}
		return fmt.Errorf("rabbitmqctl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
