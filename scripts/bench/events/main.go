// Command events measures lift's event pipeline for `make bench` (scripts/bench-events):
//
//	events raw -amqp URL            the rate at which a minimal publisher gets messages
//	                                of 100 events confirmed by RabbitMQ (the ceiling)
//	events e2e -url URL -key KEY …  end to end: HTTP collector (100 events per request)
//	                                → RabbitMQ → consumer → ClickHouse, with the latency
//	                                from a 202 to the event being visible in ClickHouse;
//	                                -rate N offers N events/s on a schedule (open loop)
//	                                instead of as fast as lift answers
//
// Each prints one Markdown table row.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/migrations"
)

const perRequest = 100

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: events raw|e2e [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "raw":
		err = raw(os.Args[2:])
	case "e2e":
		err = e2e(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "events:", err)
		os.Exit(1)
	}
}

// batchBody is a collector request of 100 events; events is the same list as the
// JSON array a lift message carries.
func batchBody(user string, n int, typ string) (request []byte, events []byte) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var b bytes.Buffer
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"event_id":%q,"type":%q,"user_id":"%s-%d","timestamp":%q,"properties":{"path":"/products/%d","ref":"bench"}}`,
			ingest.NewID().String(), typ, user, i, now, i)
	}
	events = append(append([]byte{'['}, b.Bytes()...), ']')
	request = append(append([]byte(`{"events":`), events...), '}')
	return request, events
}

// requestTemplate is a collector request of 100 events whose event ids are rewritten
// in place before each send: the load generator shares the cores with lift, so it
// should spend as little CPU per event as it can.
type requestTemplate struct {
	body []byte
	ids  []int // offsets of the event ids in body
}

func newRequestTemplate(user string) *requestTemplate {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	t := &requestTemplate{body: []byte(`{"events":[`)}
	for i := range perRequest {
		if i > 0 {
			t.body = append(t.body, ',')
		}
		t.body = append(t.body, `{"event_id":"`...)
		t.ids = append(t.ids, len(t.body))
		t.body = fmt.Appendf(t.body, `%s","type":"page_view","user_id":"%s-%d","timestamp":%q,"properties":{"path":"/products/%d","ref":"bench"}}`,
			ingest.NewID(), user, i, now, i)
	}
	t.body = append(t.body, "]}"...)
	return t
}

func (t *requestTemplate) next() []byte {
	for _, at := range t.ids {
		copy(t.body[at:], ingest.NewID().String())
	}
	return t.body
}

func raw(args []string) error {
	fs := flag.NewFlagSet("raw", flag.ExitOnError)
	url := fs.String("amqp", "", "vhost URL")
	dur := fs.Duration("duration", 10*time.Second, "")
	window := fs.Int("window", 256, "unconfirmed messages in flight")
	_ = fs.Parse(args)
	conn, err := amqp.Dial(*url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := amqpbus.Declare(ch); err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	_, body := batchBody("raw", perRequest, "page_view")
	inflight := make(chan *amqp.DeferredConfirmation, *window)
	var confirmed atomic.Int64
	done := make(chan error, 1)
	go func() {
		for dc := range inflight {
			if !dc.Wait() {
				done <- fmt.Errorf("nack")
				return
			}
			confirmed.Add(1)
		}
		done <- nil
	}()
	start := time.Now()
	for time.Since(start) < *dur {
		dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), amqpbus.Exchange, "page_view", true, false,
			amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: body})
		if err != nil {
			return err
		}
		inflight <- dc
	}
	close(inflight)
	if err := <-done; err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("| minimal publisher, confirmed (window %d, persistent, quorum queues) | %.0f | — | — | — |\n",
		*window, float64(confirmed.Load()*perRequest)/secs)
	return nil
}

func e2e(args []string) error {
	fs := flag.NewFlagSet("e2e", flag.ExitOnError)
	url := fs.String("url", "", "lift base URL")
	key := fs.String("key", "", "client key")
	chAddr := fs.String("ch", "127.0.0.1:9000", "ClickHouse address")
	db := fs.String("db", "", "ClickHouse database")
	dur := fs.Duration("duration", 20*time.Second, "")
	conns := fs.Int("c", 16, "concurrent clients")
	pid := fs.Int("pid", 0, "lift's pid, for peak RSS")
	rate := fs.Int("rate", 0, "events/s to offer (open loop); 0: as fast as the clients get answers")
	var procs processList
	fs.Var(&procs, "cpu", "name=pid of a process whose CPU time to report (repeatable); the load generator is always reported")
	cpuOut := fs.String("cpu-out", "", "file to write the CPU report to (Markdown)")
	_ = fs.Parse(args)
	procs = append(procs, process{"load generator", os.Getpid()})

	chdb := migrations.OpenClickHouse(*chAddr, *db)
	defer chdb.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns}}
	post := func(body []byte) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, *url+"/v1/events", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+*key)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	// Probes: one request of click events every 50 ms, each by its own user, so
	// visibility is a primary-key lookup (ORDER BY type, user_id, …).
	var (
		mu       sync.Mutex
		pending  = map[string]time.Time{} // probe user → 202 time
		latency  []time.Duration
		accepted atomic.Int64
		failures atomic.Int64
	)
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	cpuBefore := sampleCPU(procs)
	// At a fixed rate, requests are due on a schedule whatever the answers: a slow
	// lift gets a queue of due requests, not fewer of them.
	var due chan struct{}
	if *rate > 0 {
		due = make(chan struct{}, *rate)
		go pace(ctx, due, float64(*rate)/perRequest)
	}
	for w := range *conns {
		wg.Go(func() {
			tmpl := newRequestTemplate(fmt.Sprintf("w%d", w))
			for ctx.Err() == nil {
				if due != nil {
					select {
					case <-due:
					case <-ctx.Done():
						return
					}
				}
				code, err := post(tmpl.next())
				if err != nil || code != http.StatusAccepted {
					failures.Add(1)
					continue
				}
				accepted.Add(perRequest)
			}
		})
	}
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ctx.Err() == nil; i++ {
			<-tick.C
			user := fmt.Sprintf("probe-%d", i)
			body, _ := batchBody(user, 1, "click")
			if code, err := post(body); err == nil && code == http.StatusAccepted {
				mu.Lock()
				pending[user+"-0"] = time.Now()
				mu.Unlock()
				accepted.Add(1)
			}
		}
	})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for {
			mu.Lock()
			users := make([]string, 0, len(pending))
			for u := range pending {
				users = append(users, "'"+u+"'")
			}
			mu.Unlock()
			if len(users) == 0 && ctx.Err() != nil {
				return
			}
			if len(users) > 0 {
				seen, err := visible(chdb, users)
				if err == nil {
					now := time.Now()
					mu.Lock()
					for _, u := range seen {
						latency = append(latency, now.Sub(pending[u]))
						delete(pending, u)
					}
					mu.Unlock()
				}
			}
			time.Sleep(50 * time.Millisecond) // each poll costs ClickHouse a few ms of the shared CPU
		}
	}()
	wg.Wait()
	loadEnd := time.Now()
	cpuAfter := sampleCPU(procs)
	var stored int64
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := chdb.QueryRow("SELECT count() FROM events").Scan(&stored); err == nil && stored >= accepted.Load() {
			break
		}
	}
	drained := time.Now()
	<-pollDone
	slices.Sort(latency)
	pct := func(p float64) float64 {
		if len(latency) == 0 {
			return 0
		}
		return latency[min(len(latency)-1, int(p*float64(len(latency))))].Seconds() * 1000
	}
	rss := peakRSS(*pid)
	offered := "as fast as answered"
	if *rate > 0 {
		offered = fmt.Sprintf("%d events/s offered", *rate)
	}
	fmt.Printf("| lift end to end: HTTP (100 events/request, %d clients, %s) → RabbitMQ → ClickHouse | %.0f (accepted %.0f/s while loading) | %.0f | %.0f | %s |\n",
		*conns, offered, float64(accepted.Load())/drained.Sub(start).Seconds(), float64(accepted.Load())/loadEnd.Sub(start).Seconds(),
		pct(0.5), pct(0.99), rss)
	if *cpuOut != "" {
		report := cpuReport(procs, cpuBefore, cpuAfter, loadEnd.Sub(start), float64(accepted.Load()))
		if err := os.WriteFile(*cpuOut, []byte(report), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "e2e: %d accepted, %d failed requests, %d stored, %d probes, drained %.1fs after the load\n",
		accepted.Load(), failures.Load(), stored, len(latency), drained.Sub(loadEnd).Seconds())
	return nil
}

// pace makes a request due perSecond times a second until ctx ends.
func pace(ctx context.Context, due chan<- struct{}, perSecond float64) {
	start := time.Now()
	for sent := 0; ctx.Err() == nil; {
		for ; float64(sent) < time.Since(start).Seconds()*perSecond; sent++ {
			select {
			case due <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
}

func visible(db *sql.DB, quotedUsers []string) ([]string, error) {
	rows, err := db.Query("SELECT user_id FROM events WHERE type = 'click' AND user_id IN (" + strings.Join(quotedUsers, ",") + ")")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func peakRSS(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "n/a"
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int
			if _, err := fmt.Sscan(strings.TrimSpace(v), &kb); err == nil {
				return fmt.Sprintf("%d MiB", kb/1024)
			}
		}
	}
	return "n/a"
}
