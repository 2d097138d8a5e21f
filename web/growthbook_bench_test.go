package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/gbpayload"
	"github.com/liftlab/lift/web"
)

// largeConfig is the GrowthBook benchmarks' configuration: 200 running experiments
// (a third targeted, a fifth in namespaces, every tenth a bandit with two segments)
// and 200 flags of three rules each (a condition on a saved group, a segment rollout,
// an experiment). version changes a flag's default, to make a new snapshot version.
func largeConfig(version int) *experiments.Config {
	cfg := &experiments.Config{
		Segments: []experiments.Segment{
			{Key: "mobile", Kind: "attribute", Condition: json.RawMessage(`{"device":"mobile"}`)},
			{Key: "intent", Kind: "behavioral", Rule: json.RawMessage(`{"event":"product_view","count_gte":3,"within":"10m"}`)},
		},
		SavedGroups: []experiments.SavedGroup{{Key: "beta", Values: []any{"u1", "u2", "u3", "u4", "u5"}}},
	}
	for i := range 200 {
		e := experiments.Experiment{Key: fmt.Sprintf("exp-%d", i), Status: experiments.StatusRunning,
			Variants: []experiments.Variant{{Key: "control", Weight: 0.5, Value: json.RawMessage(`{"color":"blue"}`)},
				{Key: "treatment", Weight: 0.5, Value: json.RawMessage(`{"color":"green"}`)}}}
		if i%3 == 0 {
			e.Targeting = json.RawMessage(`{"country":{"$in":["US","CA","GB"]},"plan":{"$ne":"free"}}`)
		}
		if i%5 == 0 {
			e.Namespace = &experiments.Namespace{ID: fmt.Sprintf("ns-%d", i/25), Range: [2]float64{0.1, 0.6}}
		}
		if i%10 == 0 {
			e.Type = experiments.TypeBandit
			e.Bandit = &experiments.BanditConfig{PerSegment: []string{"mobile", "intent"}}
		}
		cfg.Experiments = append(cfg.Experiments, e)
	}
	for i := range 200 {
		def := "false"
		if i == 0 && version%2 == 1 {
			def = "true"
		}
		half := 0.5
		cfg.Flags = append(cfg.Flags, experiments.Flag{Key: fmt.Sprintf("flag-%d", i), Type: "boolean", Default: json.RawMessage(def),
			Rules: []experiments.Rule{
				{Condition: json.RawMessage(`{"id":{"$inGroup":"beta"}}`), Value: json.RawMessage(`true`)},
				{Segment: "mobile", Rollout: &half, Value: json.RawMessage(`true`)},
				{Experiment: fmt.Sprintf("exp-%d", i)},
			}})
	}
	return cfg
}

func BenchmarkGrowthBookPayloadBuild(b *testing.B) {
	snap := experiments.NewSnapshot(largeConfig(0), time.Now())
	var size int
	b.ReportAllocs()
	for b.Loop() {
		body, err := json.Marshal(gbpayload.Build(snap, time.Now()))
		if err != nil {
			b.Fatal(err)
		}
		size = len(body)
	}
	b.ReportMetric(float64(size)/1024, "KiB/payload")
}

type benchLoader struct{ version atomic.Int64 }

func (l *benchLoader) LoadConfig(context.Context) (*experiments.Config, error) {
	return largeConfig(int(l.version.Load())), nil
}

func benchHandler(b *testing.B) (http.Handler, *experiments.Live, *benchLoader) {
	loader := &benchLoader{}
	live := experiments.NewLive(loader)
	if err := live.Reload(context.Background()); err != nil {
		b.Fatal(err)
	}
	h := web.New(web.Deps{Log: slog.New(slog.DiscardHandler), Snapshots: live, Keys: gbKeys{}, Registry: prometheus.NewRegistry(),
		MaxBodyBytes: 1 << 20})
	return h, live, loader
}

// BenchmarkGrowthBookFeatures: GET /api/features through the whole handler (key check,
// CORS, metrics), parallel, with the payload built (and gzipped) once per snapshot
// version; the revalidation case answers If-None-Match with 304.
func BenchmarkGrowthBookFeatures(b *testing.B) {
	h, _, _ := benchHandler(b)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/features/"+gbClientKey, nil))
	etag := rec.Header().Get("ETag")
	for _, tt := range []struct {
		name, ifNoneMatch, acceptEncoding string
		status                            int
	}{{"identity", "", "", 200}, {"gzip", "", "gzip", 200}, {"revalidate", etag, "", 304}} {
		b.Run(tt.name, func(b *testing.B) {
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest("GET", "/api/features/"+gbClientKey, nil)
					if tt.ifNoneMatch != "" {
						req.Header.Set("If-None-Match", tt.ifNoneMatch)
					}
					if tt.acceptEncoding != "" {
						req.Header.Set("Accept-Encoding", tt.acceptEncoding)
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != tt.status {
						b.Errorf("status %d", rec.Code)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}

// BenchmarkGrowthBookStreamFanout: 1,000 SDK streams over loopback HTTP; each
// iteration changes the configuration and times until every stream has received the
// new payload (ms/all, the reload included), the median stream being ms/p50.
func BenchmarkGrowthBookStreamFanout(b *testing.B) {
	const streams = 1000
	h, live, loader := benchHandler(b)
	srv := httptest.NewUnstartedServer(h)
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams, MaxConnsPerHost: 0}}
	got := make(chan time.Time, streams)
	ready := make(chan struct{}, streams)
	for range streams {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/sub/"+gbClientKey, nil)
			resp, err := client.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					b.Error(err)
				}
				ready <- struct{}{}
				return
			}
			defer resp.Body.Close()
			lines := bufio.NewReaderSize(resp.Body, 1<<20)
			first := true
			for {
				line, err := lines.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(line, "event: features") {
					if first {
						first = false
						ready <- struct{}{}
						continue
					}
					got <- time.Now()
				}
			}
		}()
	}
	for range streams {
		<-ready
	}
	var all, p50 time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		loader.version.Store(int64(i + 1))
		start := time.Now()
		if err := live.Reload(ctx); err != nil {
			b.Fatal(err)
		}
		for n := 1; n <= streams; n++ {
			select {
			case at := <-got:
				if n == streams/2 {
					p50 += at.Sub(start)
				}
				if n == streams {
					all += at.Sub(start)
				}
			case <-time.After(10 * time.Second):
				b.Fatalf("%d of %d streams received the change", n-1, streams)
			}
		}
	}
	b.ReportMetric(float64(all.Milliseconds())/float64(b.N), "ms/all")
	b.ReportMetric(float64(p50.Microseconds())/1000/float64(b.N), "ms/p50")
}
