package chaos

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Stream sends events to the collector the way a well-behaved client does: batches
// of Batch events with their own event ids, started at Rate requests a second by at
// most Workers at once, and a batch refused with 503/429 (or lost to a network
// error) is retried whole, with the same ids, after Retry-After, for up to RetryFor.
// It remembers every response and the ids lift acknowledged with 202.
type Stream struct {
	URL, Key string
	Events   int
	Batch    int           // default 100
	Rate     float64       // requests started per second, default 20
	Workers  int           // default 16
	RetryFor time.Duration // default 5 minutes
	Timeout  time.Duration // client timeout per request, default 30 s

	accepted atomic.Int64
	mu       sync.Mutex
	ids      []string
	resps    []Response
	gaveUp   int
}

// Response is one HTTP exchange of a stream.
type Response struct {
	At         time.Time // when the request was sent
	Took       time.Duration
	Status     int // 0: no answer (Err)
	RetryAfter string
	Err        error
}

// Accepted is how many events lift has acknowledged so far.
func (s *Stream) Accepted() int { return int(s.accepted.Load()) }

// Run sends every event (or until ctx ends) and returns when each batch is
// acknowledged or given up.
func (s *Stream) Run(ctx context.Context) {
	if s.Batch == 0 {
		s.Batch = 100
	}
	if s.Rate == 0 {
		s.Rate = 20
	}
	if s.Workers == 0 {
		s.Workers = 16
	}
	if s.RetryFor == 0 {
		s.RetryFor = 5 * time.Minute
	}
	if s.Timeout == 0 {
		s.Timeout = 30 * time.Second
	}
	client := &http.Client{Timeout: s.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: s.Workers}}
	slots := make(chan struct{}, s.Workers)
	tick := time.NewTicker(time.Duration(float64(time.Second) / s.Rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	for sent := 0; sent < s.Events && ctx.Err() == nil; sent += s.Batch {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		slots <- struct{}{}
		n := min(s.Batch, s.Events-sent)
		wg.Go(func() {
			defer func() { <-slots }()
			s.send(ctx, client, n)
		})
	}
	wg.Wait()
}

func (s *Stream) send(ctx context.Context, client *http.Client, n int) {
	ids := make([]string, n)
	var body bytes.Buffer
	body.WriteString(`{"events":[`)
	for i := range ids {
		ids[i] = uuid.NewString()
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"event_id":%q,"type":"page_view","user_id":"u%d","properties":{"path":"/p/%d"}}`,
			ids[i], rand.IntN(100_000), rand.IntN(50))
	}
	body.WriteString(`]}`)
	deadline := time.Now().Add(s.RetryFor)
	for ctx.Err() == nil {
		r := s.post(ctx, client, body.Bytes())
		s.mu.Lock()
		s.resps = append(s.resps, r)
		s.mu.Unlock()
		switch {
		case r.Status == http.StatusAccepted:
			s.mu.Lock()
			s.ids = append(s.ids, ids...)
			s.mu.Unlock()
			s.accepted.Add(int64(n))
			return
		case r.Status != 0 && r.Status != http.StatusServiceUnavailable && r.Status != http.StatusTooManyRequests:
			s.mu.Lock()
			s.gaveUp++
			s.mu.Unlock()
			return // a status a retry cannot mend; the scenario reports it
		case time.Now().After(deadline):
			s.mu.Lock()
			s.gaveUp++
			s.mu.Unlock()
			return
		}
		wait := 250 * time.Millisecond
		if secs, err := strconv.Atoi(r.RetryAfter); err == nil {
			wait = time.Duration(secs) * time.Second
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func (s *Stream) post(ctx context.Context, client *http.Client, body []byte) Response {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return Response{At: time.Now(), Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Key)
	r := Response{At: time.Now()}
	resp, err := client.Do(req)
	r.Took = time.Since(r.At)
	if err != nil {
		r.Err = err
		return r
	}
	resp.Body.Close()
	r.Status, r.RetryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	return r
}

// Result is what a finished stream saw.
type Result struct {
	IDs       []string   // acknowledged event ids
	Responses []Response // in the order they came back
	GaveUp    int        // batches never acknowledged
}

// Result returns what the stream saw so far (call it after Run returned).
func (s *Stream) Result() Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Result{IDs: slices.Clone(s.ids), Responses: slices.Clone(s.resps), GaveUp: s.gaveUp}
}

// Statuses counts responses by status (0: no answer) among those sent in [from, to).
func (r Result) Statuses(from, to time.Time) map[int]int {
	out := map[int]int{}
	for _, x := range r.Responses {
		if !x.At.Before(from) && x.At.Before(to) {
			out[x.Status]++
		}
	}
	return out
}

// Latency returns the q-quantile (0..1) and the maximum of the response times of
// requests sent in [from, to).
func (r Result) Latency(q float64, from, to time.Time) (quantile, most time.Duration) {
	var d []time.Duration
	for _, x := range r.Responses {
		if !x.At.Before(from) && x.At.Before(to) {
			d = append(d, x.Took)
		}
	}
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))], d[len(d)-1]
}

// FirstAfter returns the first response sent at or after t whose status satisfies ok.
func (r Result) FirstAfter(t time.Time, ok func(Response) bool) (Response, bool) {
	var best Response
	found := false
	for _, x := range r.Responses {
		if !x.At.Before(t) && ok(x) && (!found || x.At.Before(best.At)) {
			best, found = x, true
		}
	}
	return best, found
}
