// Command load is the open-model load test of `make bench` (scripts/bench-load), with
// vegeta as a library: it measures the peak rate of POST /v1/decide (as many requests
// as vegeta's workers can send, for -peak), then sends /v1/decide at a constant
// -share of that peak for -duration while a second attacker streams events through
// the collector at a constant -events per second (requests of 100). Constant rates
// are an open model: requests leave on schedule whether or not earlier ones were
// answered, so a slow server shows as latency and errors instead of as a slower
// client (coordinated omission). It prints a Markdown table.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

const perRequest = 100

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "lift's base URL")
	key := flag.String("key", "", "a client API key")
	peakFor := flag.Duration("peak", 10*time.Second, "how long the peak of /v1/decide is measured")
	duration := flag.Duration("duration", 60*time.Second, "how long the constant load runs")
	share := flag.Float64("share", 0.5, "share of the measured peak sent to /v1/decide")
	events := flag.Int("events", 20_000, "events per second sent to /v1/events meanwhile")
	flag.Parse()
	if err := run(*url, *key, *peakFor, *duration, *share, *events); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func header(key string) http.Header {
	return http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/json"}}
}

// decideTargets sends each request for a new user, as traffic from a site does.
func decideTargets(url, key string) vegeta.Targeter {
	var n atomic.Int64
	h := header(key)
	return func(t *vegeta.Target) error {
		t.Method, t.URL, t.Header = http.MethodPost, url+"/v1/decide", h
		t.Body = []byte(`{"user_id":"load-` + strconv.FormatInt(n.Add(1), 10) + `","attributes":{"country":"US","plan":"free"}}`)
		return nil
	}
}

// eventTargets sends requests of 100 page views with fresh event ids.
func eventTargets(url, key string) vegeta.Targeter {
	h := header(key)
	return func(t *vegeta.Target) error {
		var b bytes.Buffer
		b.WriteString(`{"events":[`)
		for i := range perRequest {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"event_id":%q,"type":"page_view","user_id":"u%d","properties":{"path":"/p/%d"}}`,
				uuid.NewString(), rand.IntN(1_000_000), rand.IntN(100))
		}
		b.WriteString(`]}`)
		t.Method, t.URL, t.Header, t.Body = http.MethodPost, url+"/v1/events", h, b.Bytes()
		return nil
	}
}

func attack(tr vegeta.Targeter, rate vegeta.Rate, d time.Duration, opts ...func(*vegeta.Attacker)) *vegeta.Metrics {
	a := vegeta.NewAttacker(append([]func(*vegeta.Attacker){vegeta.Timeout(10 * time.Second), vegeta.KeepAlive(true)}, opts...)...)
	var m vegeta.Metrics
	for r := range a.Attack(tr, rate, d, "") {
		m.Add(r)
	}
	m.Close()
	return &m
}

func run(url, key string, peakFor, duration time.Duration, share float64, eventsPerSecond int) error {
	// Warm up, then the peak: rate 0 is as fast as 64 workers go (a closed model,
	// right for a ceiling).
	attack(decideTargets(url, key), vegeta.Rate{Freq: 0}, 3*time.Second, vegeta.Workers(64), vegeta.MaxWorkers(64))
	peak := attack(decideTargets(url, key), vegeta.Rate{Freq: 0}, peakFor, vegeta.Workers(64), vegeta.MaxWorkers(64))
	if peak.Success < 1 {
		return fmt.Errorf("peak run: %.2f%% success, errors %v", 100*peak.Success, peak.Errors)
	}
	rate := int(share * peak.Throughput)

	var wg sync.WaitGroup
	var decide, collect *vegeta.Metrics
	wg.Go(func() {
		collect = attack(eventTargets(url, key), vegeta.Rate{Freq: eventsPerSecond / perRequest, Per: time.Second}, duration,
			vegeta.Workers(16), vegeta.MaxWorkers(512))
	})
	wg.Go(func() {
		decide = attack(decideTargets(url, key), vegeta.Rate{Freq: rate, Per: time.Second}, duration,
			vegeta.Workers(32), vegeta.MaxWorkers(1024))
	})
	wg.Wait()

	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
	errors := func(m *vegeta.Metrics, ok string) int { return int(m.Requests) - m.StatusCodes[ok] }
	fmt.Printf("Peak of /v1/decide alone (vegeta, 64 workers, %s): %.0f req/s, p99 %s ms. Constant load for %s: /v1/decide at %.0f%% of that peak, events at %d/s (requests of %d) at the same time.\n\n",
		peakFor, peak.Throughput, ms(peak.Latencies.P99), duration, 100*share, eventsPerSecond, perRequest)
	fmt.Println("| stream | rate asked | achieved | p50 ms | p90 ms | p99 ms | max ms | errors (non-2xx or failed) |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	fmt.Printf("| POST /v1/decide | %d req/s | %.0f req/s | %s | %s | %s | %s | %d of %d |\n", rate, decide.Throughput,
		ms(decide.Latencies.P50), ms(decide.Latencies.P90), ms(decide.Latencies.P99), ms(decide.Latencies.Max), errors(decide, "200"), decide.Requests)
	fmt.Printf("| POST /v1/events | %d events/s | %.0f events/s | %s | %s | %s | %s | %d of %d |\n", eventsPerSecond, collect.Throughput*perRequest,
		ms(collect.Latencies.P50), ms(collect.Latencies.P90), ms(collect.Latencies.P99), ms(collect.Latencies.Max), errors(collect, "202"), collect.Requests)
	if len(decide.Errors)+len(collect.Errors) > 0 {
		fmt.Printf("\nerrors: %v %v\n", decide.Errors, collect.Errors)
	}
	return nil
}
