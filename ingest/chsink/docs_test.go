package chsink_test

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/chstore"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
	"github.com/liftlab/lift/segments"
	segchsink "github.com/liftlab/lift/segments/chsink"
)

var sqlBlock = regexp.MustCompile("(?s)```sql\n(.*?)```")

// docsWorld is what TestAnalyticsExamples stores: every event once (the sink gets
// each batch twice, as after a redelivery) and the segment changes once (recorded
// twice, as after a restart).
type docsWorld struct {
	exposures, events []ingest.Event
	changes           []segments.Change
}

// TestAnalyticsExamples runs every SQL example of docs/analytics.md on the test
// server and compares its whole answer with the same figures computed in Go from the
// events the test stored. An example without a check here fails the test.
func TestAnalyticsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := sqlBlock.FindAllSubmatch(doc, -1)
	addr, db := testenv.ClickHouse(t)
	w := docsEvents()
	ctx := context.Background()
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	all := append(slices.Clone(w.exposures), w.events...)
	for range 2 {
		if err := sink.Insert(ctx, all); err != nil {
			t.Fatal(err)
		}
	}
	changes, err := segchsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer changes.Close()
	for range 2 {
		if err := changes.Record(ctx, w.changes); err != nil {
			t.Fatal(err)
		}
	}
	// Results computed once, as the results API would, fill metric_nodes.
	results, err := chstore.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer results.Close()
	if _, err := results.MetricAggregates(ctx, experiments.MetricQuery{Experiment: "hero-banner", Event: "purchase",
		Kind: "conversion", Window: experiments.DefaultWindow}, experiments.Overall); err != nil {
		t.Fatal(err)
	}
	conn := migrations.OpenClickHouse(addr, db)
	defer conn.Close()

	checks := []struct {
		marker string // a piece of the query that tells which example it is
		want   func(docsWorld) [][]string
	}{
		{"FROM daily_exposures", wantDailyExposures},
		{"FROM first_exposures", wantConversion},
		{"groupArrayIf(ts, type = 'product_view')", wantFunnel},
		{"FROM daily_events", wantDailyEvents},
		{"indexOf(prop_keys, 'path')", wantPages},
		{"arrayCumSum", wantSegmentSizes},
		{"WHERE kind = 'enter'", wantEntries},
		{"FROM metric_nodes", wantMetricNodes},
	}
	used := make([]int, len(checks))
	for _, b := range blocks {
		query := string(b[1])
		i := slices.IndexFunc(checks, func(c struct {
			marker string
			want   func(docsWorld) [][]string
		}) bool {
			return strings.Contains(query, c.marker)
		})
		if i < 0 {
			t.Errorf("docs/analytics.md has an example this test does not check:\n%s", query)
			continue
		}
		used[i]++
		got, err := queryStrings(ctx, conn, query)
		if err != nil {
			t.Errorf("query failed: %v\n%s", err, query)
			continue
		}
		want := checks[i].want(w)
		if len(want) == 0 {
			t.Errorf("%s: the test data gives this example nothing to show", checks[i].marker)
		}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("answer of the example with %q (-computed in Go +ClickHouse):\n%s\n%s", checks[i].marker, diff, query)
		}
	}
	for i, n := range used {
		if n != 1 {
			t.Errorf("%d examples with %q in docs/analytics.md, want 1", n, checks[i].marker)
		}
	}
}

// docsEvents generates the test's events: 80 users exposed to hero-banner (every
// tenth to both variants), their page views (some with a nested "path", a numeric
// one, or none), product views, carts (some in the second of the view, some before
// it), purchases (some too late for the funnel, some before exposure), and segment
// changes over two days.
func docsEvents() docsWorld {
	var w docsWorld
	base := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	ev := func(typ, user string, at time.Time, value float64, props string) ingest.Event {
		return ingest.Event{ID: ingest.NewID(), Type: typ, UserID: user, Timestamp: at, ReceivedAt: at, Value: value,
			Properties: []byte(props)}
	}
	paths := []string{"/", "/pricing", "/shoes"}
	for i := range 80 {
		user := fmt.Sprintf("u%02d", i)
		variant := []string{"control", "bold"}[i%2]
		first := base.Add(time.Hour + time.Duration(i)*7*time.Minute + time.Duration(i)*time.Second)
		expose := func(at time.Time, variant string) {
			e := ev(ingest.TypeExposure, user, at, 0, "")
			e.Exposure = &ingest.Exposure{Experiment: "hero-banner", Variant: variant, AssignmentProbability: 0.5}
			w.exposures = append(w.exposures, e)
		}
		expose(first, variant)
		if i%3 == 0 {
			expose(first.Add(24*time.Hour), variant)
		}
		if i%10 == 0 {
			expose(first.Add(2*time.Hour), []string{"bold", "control"}[i%2])
		}
		if i%4 != 3 {
			props := fmt.Sprintf(`{"path":%q}`, paths[i%3])
			switch {
			case i%11 == 0:
				props = `{"ref":"mail"}`
			case i%7 == 0:
				props = `{"path":7}`
			case i%5 == 0:
				props = fmt.Sprintf(`{"ref":{"path":"/nested"},"path":%q}`, paths[i%3])
			}
			w.events = append(w.events, ev(ingest.TypePageView, user, first.Add(time.Minute), 0, props))
		}
		if i%2 == 0 || i%3 == 0 {
			view := first.Add(time.Duration(i%5) * 10 * time.Minute)
			w.events = append(w.events, ev(ingest.TypeProductView, user, view, 0, `{"sku":"a"}`))
			var cart time.Time
			switch i % 4 {
			case 0:
				cart = view // in the same second
			case 1:
				cart = view.Add(20 * time.Minute)
			case 2:
				cart = view.Add(-time.Minute) // before the view
			}
			if !cart.IsZero() {
				w.events = append(w.events, ev(ingest.TypeAddToCart, user, cart, 0, `{}`))
				switch {
				case i%12 == 6:
					w.events = append(w.events, ev(ingest.TypePurchase, user, cart.Add(2*time.Hour), float64(10+i%5), `{}`))
				case i%3 == 0:
					w.events = append(w.events, ev(ingest.TypePurchase, user, cart, float64(10+i%5), `{}`))
				case i%4 == 1:
					w.events = append(w.events, ev(ingest.TypePurchase, user, cart.Add(30*time.Minute), float64(10+i%5), `{}`))
				}
			}
		}
		if i%13 == 5 {
			w.events = append(w.events, ev(ingest.TypePurchase, user, first.Add(-time.Hour), 50, `{}`))
		}
	}
	at := func(day, hour int) time.Time {
		return base.Add(time.Duration(day)*24*time.Hour + time.Duration(hour)*time.Hour)
	}
	w.changes = []segments.Change{
		{Kind: segments.Enter, UserID: "u01", Segment: "high-intent", At: at(0, 10), Expiry: at(0, 11)},
		{Kind: segments.Exit, UserID: "u01", Segment: "high-intent", At: at(0, 11)},
		{Kind: segments.Enter, UserID: "u02", Segment: "high-intent", At: at(0, 12)},
		{Kind: segments.Enter, UserID: "u01", Segment: "high-intent", At: at(1, 9)},
		{Kind: segments.Enter, UserID: "u03", Segment: "vip", At: at(1, 10)},
		{Kind: segments.Exit, UserID: "u02", Segment: "high-intent", At: at(1, 15)},
	}
	return w
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func num(f float64) string { return strconv.FormatFloat(f, 'g', 10, 64) }

func count[T ~int | ~uint64](n T) string { return strconv.FormatUint(uint64(n), 10) }

func wantDailyExposures(w docsWorld) [][]string {
	type key struct{ day, variant string }
	ids, users := map[key]int{}, map[key]map[string]bool{}
	for _, e := range w.exposures {
		k := key{day(e.Timestamp), e.Exposure.Variant}
		ids[k]++
		if users[k] == nil {
			users[k] = map[string]bool{}
		}
		users[k][e.UserID] = true
	}
	var out [][]string
	for _, k := range slices.SortedFunc(maps.Keys(ids), func(a, b key) int { return cmp.Or(cmp.Compare(a.day, b.day), cmp.Compare(a.variant, b.variant)) }) {
		out = append(out, []string{k.day, k.variant, count(ids[k]), count(len(users[k]))})
	}
	return out
}

// firstExposures is each user's first exposure.
func firstExposures(w docsWorld) map[string]ingest.Event {
	first := map[string]ingest.Event{}
	for _, e := range w.exposures {
		if f, ok := first[e.UserID]; !ok || e.Timestamp.Before(f.Timestamp) {
			first[e.UserID] = e
		}
	}
	return first
}

func wantConversion(w docsWorld) [][]string {
	first := firstExposures(w)
	type arm struct{ users, converted, revenue float64 }
	arms := map[string]*arm{}
	for user, f := range first {
		a := arms[f.Exposure.Variant]
		if a == nil {
			a = &arm{}
			arms[f.Exposure.Variant] = a
		}
		a.users++
		converted := false
		for _, e := range w.events {
			if e.UserID == user && e.Type == ingest.TypePurchase {
				a.revenue += e.Value
				converted = converted || !e.Timestamp.Before(f.Timestamp)
			}
		}
		if converted {
			a.converted++
		}
	}
	var out [][]string
	for _, v := range slices.Sorted(maps.Keys(arms)) {
		a := arms[v]
		out = append(out, []string{v, num(a.users), num(a.converted), num(a.converted / a.users), num(a.revenue / a.users)})
	}
	return out
}

func wantFunnel(w docsWorld) [][]string {
	type times struct{ views, carts, buys []time.Time }
	users := map[string]*times{}
	for _, e := range w.events {
		u := users[e.UserID]
		if u == nil {
			u = &times{}
		}
		switch e.Type {
		case ingest.TypeProductView:
			u.views = append(u.views, e.Timestamp)
		case ingest.TypeAddToCart:
			u.carts = append(u.carts, e.Timestamp)
		case ingest.TypePurchase:
			u.buys = append(u.buys, e.Timestamp)
		default:
			continue
		}
		users[e.UserID] = u
	}
	levels := map[int]int{}
	for _, u := range users {
		level := 0
		for _, v := range u.views {
			l := 1
			end := v.Add(time.Hour)
			var cart time.Time
			for _, c := range u.carts {
				if !c.Before(v) && !c.After(end) && (l == 1 || c.Before(cart)) {
					cart, l = c, 2
				}
			}
			for _, b := range u.buys {
				if l >= 2 && !b.Before(cart) && !b.After(end) {
					l = 3
				}
			}
			level = max(level, l)
		}
		levels[level]++
	}
	var out [][]string
	for _, l := range slices.Sorted(maps.Keys(levels)) {
		out = append(out, []string{count(l), count(levels[l])})
	}
	return out
}

func wantDailyEvents(w docsWorld) [][]string {
	type key struct{ day, typ string }
	n, users := map[key]int{}, map[key]map[string]bool{}
	for _, e := range w.events {
		k := key{day(e.Timestamp), e.Type}
		n[k]++
		if users[k] == nil {
			users[k] = map[string]bool{}
		}
		users[k][e.UserID] = true
	}
	var out [][]string
	for _, k := range slices.SortedFunc(maps.Keys(n), func(a, b key) int { return cmp.Or(cmp.Compare(a.day, b.day), cmp.Compare(a.typ, b.typ)) }) {
		out = append(out, []string{k.day, k.typ, count(n[k]), count(len(users[k]))})
	}
	return out
}

func wantPages(w docsWorld) [][]string {
	views := map[string]int{}
	for _, e := range w.events {
		var props map[string]any
		if e.Type != ingest.TypePageView || json.Unmarshal(e.Properties, &props) != nil {
			continue
		}
		if p, ok := props["path"].(string); ok {
			views[p]++
		}
	}
	paths := slices.SortedFunc(maps.Keys(views), func(a, b string) int { return cmp.Or(cmp.Compare(views[b], views[a]), cmp.Compare(a, b)) })
	var out [][]string
	for _, p := range paths[:min(10, len(paths))] {
		out = append(out, []string{p, count(views[p])})
	}
	return out
}

func wantSegmentSizes(w docsWorld) [][]string {
	type key struct{ segment, day string }
	entered, exited := map[key]int{}, map[key]int{}
	for _, c := range w.changes {
		k := key{c.Segment, day(c.At)}
		if c.Kind == segments.Enter {
			entered[k]++
		} else {
			exited[k]++
		}
	}
	days := slices.Collect(maps.Keys(entered))
	for k := range exited {
		if !slices.Contains(days, k) {
			days = append(days, k)
		}
	}
	slices.SortFunc(days, func(a, b key) int { return cmp.Or(cmp.Compare(a.segment, b.segment), cmp.Compare(a.day, b.day)) })
	var out [][]string
	members := map[string]int{}
	for _, k := range days {
		members[k.segment] += entered[k] - exited[k]
		out = append(out, []string{k.segment, k.day, count(entered[k]), count(exited[k]), strconv.Itoa(members[k.segment])})
	}
	return out
}

func wantEntries(w docsWorld) [][]string {
	type key struct{ day, segment string }
	n, users := map[key]int{}, map[key]map[string]bool{}
	for _, c := range w.changes {
		if c.Kind != segments.Enter {
			continue
		}
		k := key{day(c.At), c.Segment}
		n[k]++
		if users[k] == nil {
			users[k] = map[string]bool{}
		}
		users[k][c.UserID] = true
	}
	var out [][]string
	for _, k := range slices.SortedFunc(maps.Keys(n), func(a, b key) int { return cmp.Or(cmp.Compare(a.day, b.day), cmp.Compare(a.segment, b.segment)) }) {
		out = append(out, []string{k.day, k.segment, count(n[k]), count(len(users[k]))})
	}
	return out
}

// wantMetricNodes is the conversion goal as lift computes it: users exposed to one
// variant only, converted by a purchase within 7 days of their first exposure.
func wantMetricNodes(w docsWorld) [][]string {
	first := firstExposures(w)
	variants := map[string]map[string]bool{}
	for _, e := range w.exposures {
		if variants[e.UserID] == nil {
			variants[e.UserID] = map[string]bool{}
		}
		variants[e.UserID][e.Exposure.Variant] = true
	}
	exposed, converted := map[string]float64{}, map[string]float64{}
	for user, f := range first {
		if len(variants[user]) > 1 {
			continue
		}
		v := f.Exposure.Variant
		exposed[v]++
		for _, e := range w.events {
			if e.UserID == user && e.Type == ingest.TypePurchase && !e.Timestamp.Before(f.Timestamp) &&
				e.Timestamp.Before(f.Timestamp.Add(experiments.DefaultWindow)) {
				converted[v]++
				break
			}
		}
	}
	var out [][]string
	for _, v := range slices.Sorted(maps.Keys(exposed)) {
		out = append(out, []string{"v2/conversion/purchase/604800", v, num(exposed[v]), num(converted[v]), num(converted[v] / exposed[v])})
	}
	return out
}

// queryStrings runs a query and writes every value as the want functions do: dates
// as 2006-01-02, numbers with ten significant digits.
func queryStrings(ctx context.Context, conn *sql.DB, query string) ([][]string, error) {
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		row := make([]string, len(dest))
		for i, d := range dest {
			switch v := reflect.ValueOf(d).Elem().Interface().(type) {
			case time.Time:
				row[i] = day(v)
			case float64:
				row[i] = num(v)
			case float32:
				row[i] = num(float64(v))
			default:
				row[i] = fmt.Sprint(v)
			}
		}
		out = append(out, row)
	}
	return out, rows.Err()
}
