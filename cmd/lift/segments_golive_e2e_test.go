package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// goLiveLimit is how soon after it is published a behavioural segment must serve
// decisions, with the events that arrived before counted.
const goLiveLimit = 2 * time.Second

// TestSegmentGoLive publishes a new behavioural segment while events flow and checks
// that decisions follow it within goLiveLimit, counting events of three ages: stored
// in ClickHouse long before (read from ClickHouse), received in the seconds before
// the publication (read again from the shard stream), and sent right after it (live).
func TestSegmentGoLive(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the real pipeline")
	}
	f, pool := goLiveFixture(t)
	took := segmentGoLive(t, f, pool, "intent")
	t.Logf("decisions followed the new segment %v after its publication", took)
	if took > goLiveLimit {
		t.Errorf("the new segment served decisions %v after it was published, want at most %v", took, goLiveLimit)
	}
}

// BenchmarkSegmentGoLive is the time from publishing a behavioural segment to the
// first decision that follows it for every user it should hold (ms/golive).
func BenchmarkSegmentGoLive(b *testing.B) {
	if testing.Short() {
		b.Skip("drives the real pipeline")
	}
	f, pool := goLiveFixture(b)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		total += segmentGoLive(b, f, pool, fmt.Sprintf("intent-%d", i))
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/golive")
}

func goLiveFixture(tb testing.TB) (*fixture, *pgxpool.Pool) {
	f := newFixture(tb)
	// ClickHouse is trusted with events received two seconds before a rebuild (the
	// ingest consumers store a batch within a second); later ones come from the
	// shard streams.
	f.env["LIFT_SEGMENT_REBUILD_DELAY"] = "2s"
	f.start(tb)
	pool, err := pgxpool.New(context.Background(), f.env["LIFT_POSTGRES_URL"])
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	waitEngineRuns(tb, pool, 4)
	return f, pool
}

// segmentGoLive publishes the rule of segment key (3 product views within 10
// minutes), which a flag offers a discount, and returns how long after the
// publication every user who qualifies got the discount.
func segmentGoLive(tb testing.TB, f *fixture, pool *pgxpool.Pool, key string) time.Duration {
	tb.Helper()
	// The flag needs the segment to exist: it starts with a rule nobody meets, and
	// publishing the real rule is the change measured (a new definition is rebuilt
	// from nothing, like a new segment).
	flag := "offer-" + key
	f.server.want(201, "POST", "/api/v1/segments", `{"key":"`+key+`","kind":"behavioral",
		"rule":{"event":"never","count_gte":1,"within":"1m"},"ttl":"1m"}`, nil)
	f.server.want(201, "POST", "/api/v1/flags", `{"key":"`+flag+`","type":"string","default":"none",
		"rules":[{"segment":"`+key+`","value":"discount","variant":"member"}]}`, nil)
	waitEngineRuns(tb, pool, 4, key)
	offer := func(user string) string {
		var r decideResp
		f.client.want(200, "POST", "/v1/decide", `{"user_id":"`+user+`","keys":["`+flag+`"]}`, &r)
		return string(r.Decisions[flag].Value)
	}
	views := func(user string, n int) {
		events := ""
		for i := range n {
			if i > 0 {
				events += ","
			}
			events += fmt.Sprintf(`{"type":"product_view","user_id":%q,"properties":{"sku":"x"}}`, user)
		}
		var got struct{ Accepted int }
		f.client.want(202, "POST", "/v1/events", `{"events":[`+events+`]}`, &got)
		if got.Accepted != n {
			tb.Fatalf("%d views of %s accepted, want %d", got.Accepted, user, n)
		}
	}
	early, between, late, short := key+"-early", key+"-between", key+"-late", key+"-short"
	views(early, 3)
	views(between, 2)
	views(short, 2)
	// Old enough to be read from ClickHouse at the publication.
	time.Sleep(3500 * time.Millisecond)
	views(between, 1)
	time.Sleep(300 * time.Millisecond) // applied by the engine, so read again from the stream
	published := time.Now()
	f.server.want(200, "PUT", "/api/v1/segments/"+key, `{"key":"`+key+`","kind":"behavioral",
		"rule":{"event":"product_view","count_gte":3,"within":"10m"},"ttl":"30m"}`, nil)
	views(late, 3)
	var took time.Duration
	for _, user := range []string{early, between, late} {
		for offer(user) != `"discount"` {
			if time.Since(published) > 30*time.Second {
				tb.Fatalf("%s: no discount 30 s after %s was published", user, key)
			}
			time.Sleep(10 * time.Millisecond)
		}
		took = max(took, time.Since(published))
	}
	if got := offer(short); got != `"none"` {
		tb.Errorf("%s, with two views, got %s", short, got)
	}
	waitEngineRuns(tb, pool, 4, key)
	return took
}
