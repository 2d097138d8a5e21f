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
	features          []featureValue
}

// featureValue is a row of feature_values as the segment engine writes it.
type featureValue struct {
	user, value  string
	at, recorded time.Time
}

// TestAnalyticsExamples runs every SQL example of docs/analytics.md on the test
// server and compares its whole answer with the same figures computed in Go from the
// events the test stored. An example without a check here fails the test. It runs on
// one server and on the cluster, where analysts' queries are meant to read the
// Distributed tables unchanged (docs/deploy.md).
func TestAnalyticsExamples(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := sqlBlock.FindAllSubmatch(doc, -1)
	testenv.ClickHouseEach(t, func(t *testing.T, addr, db string) { analyticsExamples(t, blocks, addr, db) })
}

func analyticsExamples(t *testing.T, blocks [][][]byte, addr, db string) {
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
	for _, f := range w.features {
		if _, err := conn0(t, addr, db).ExecContext(ctx, `INSERT INTO feature_values (ts, ts_ms, user_id, feature, value, recorded_at)
			SELECT toDateTime(?), 0, ?, 'features.views_10m', ?, toDateTime(?)`,
			f.at.UTC().Format(time.DateTime), f.user, f.value, f.recorded.UTC().Format(time.DateTime)); err != nil {
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
		{"FROM feature_values", wantFeatureValues},
		{"clicked / impressions", wantClickThrough},
		{"attributed_purchases", wantAttributed},
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
	recommendations(&w, time.Now().UTC().Truncate(time.Second))
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

// conn0 opens the test database for statements of the test's own (the docs' queries
// use the connection TestAnalyticsExamples opens).
func conn0(t *testing.T, addr, db string) *sql.DB {
	t.Helper()
	c := migrations.OpenClickHouse(addr, db)
	t.Cleanup(func() { c.Close() })
	return c
}

// recommendations adds what /v1/recommend showed six users in the last day, their
// clicks (product views carrying the recommendation_id) and purchases of shown and
// other items, within and past 24 hours; and feature values around the docs' date.
func recommendations(w *docsWorld, now time.Time) {
	ev := func(typ, user string, at time.Time, value float64, props string) {
		w.events = append(w.events, ingest.Event{ID: ingest.NewID(), Type: typ, UserID: user, Timestamp: at,
			ReceivedAt: at, Value: value, Properties: []byte(props)})
	}
	for i := range 6 {
		user := fmt.Sprintf("r%d", i)
		strategy := []string{"similar", "popular"}[i%2]
		shown := now.Add(-time.Duration(30+i) * time.Hour)
		if i >= 3 {
			shown = now.Add(-time.Duration(2+i) * time.Hour)
		}
		id := fmt.Sprintf("rec-%d", i)
		ev("$recommendation", user, shown, 0, fmt.Sprintf(
			`{"recommendation_id":%q,"recommender":"similar","strategy":%q,"items":["sku-%d","sku-x"],"nested":{"strategy":"other"}}`, id, strategy, i))
		if i%3 != 2 {
			ev(ingest.TypeProductView, user, shown.Add(time.Minute), 0, fmt.Sprintf(`{"recommendation_id":%q,"sku":"sku-%d"}`, id, i))
		}
		if i == 1 {
			ev(ingest.TypeProductView, user, shown.Add(2*time.Minute), 0, fmt.Sprintf(`{"recommendation_id":%q}`, id))
		}
		switch i % 3 {
		case 0: // bought a shown item within the day
			ev(ingest.TypePurchase, user, shown.Add(time.Hour), float64(20+i), fmt.Sprintf(`{"sku":"sku-%d"}`, i))
		case 1: // bought an item not shown, and a shown one a day too late
			ev(ingest.TypePurchase, user, shown.Add(time.Hour), 5, `{"sku":"sku-other"}`)
			ev(ingest.TypePurchase, user, shown.Add(25*time.Hour), 7, `{"sku":"sku-x"}`)
		}
	}
	docsDate := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	w.features = []featureValue{
		{"u01", "3", docsDate.Add(-26 * time.Hour), docsDate},
		{"u01", "5", docsDate.Add(-time.Hour), docsDate},
		{"u01", "9", docsDate.Add(time.Hour), docsDate},
		{"u02", "1", docsDate.Add(-10 * 24 * time.Hour), docsDate},
		{"u02", "2", docsDate.Add(-10 * 24 * time.Hour), docsDate.Add(time.Minute)}, // written again later: FINAL keeps it
		{"u03", "4", docsDate.Add(24 * time.Hour), docsDate},
	}
}

func wantFeatureValues(w docsWorld) [][]string {
	latest := map[string]featureValue{}
	for _, f := range w.features {
		if f.at.After(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)) {
			continue
		}
		l, ok := latest[f.user]
		if !ok || f.at.After(l.at) || f.at.Equal(l.at) && f.recorded.After(l.recorded) {
			latest[f.user] = f
		}
	}
	var out [][]string
	for _, u := range slices.Sorted(maps.Keys(latest)) {
		out = append(out, []string{u, latest[u].value})
	}
	return out
}

// shownRecommendations are the $recommendation events of the last days, with their
// properties decoded.
func shownRecommendations(w docsWorld, within time.Duration) []struct {
	e     ingest.Event
	props map[string]any
} {
	var out []struct {
		e     ingest.Event
		props map[string]any
	}
	for _, e := range w.events {
		var props map[string]any
		if e.Type == "$recommendation" && e.Timestamp.After(time.Now().Add(-within)) && json.Unmarshal(e.Properties, &props) == nil {
			out = append(out, struct {
				e     ingest.Event
				props map[string]any
			}{e, props})
		}
	}
	return out
}

func wantClickThrough(w docsWorld) [][]string {
	clicks := map[string]int{}
	for _, e := range w.events {
		var props map[string]any
		if (e.Type == ingest.TypeProductView || e.Type == "click") && e.Timestamp.After(time.Now().Add(-7*24*time.Hour)) &&
			json.Unmarshal(e.Properties, &props) == nil {
			if id, ok := props["recommendation_id"].(string); ok {
				clicks[id]++
			}
		}
	}
	type key struct{ recommender, strategy string }
	shown, clicked := map[key]int{}, map[key]int{}
	for _, r := range shownRecommendations(w, 7*24*time.Hour) {
		k := key{r.props["recommender"].(string), r.props["strategy"].(string)}
		shown[k]++
		if clicks[r.props["recommendation_id"].(string)] > 0 {
			clicked[k]++
		}
	}
	var out [][]string
	for _, k := range slices.SortedFunc(maps.Keys(shown), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.recommender, b.recommender), cmp.Compare(a.strategy, b.strategy))
	}) {
		out = append(out, []string{k.recommender, k.strategy, count(shown[k]), count(clicked[k]), num(float64(clicked[k]) / float64(shown[k]))})
	}
	return out
}

func wantAttributed(w docsWorld) [][]string {
	type purchase struct{ strategy, id string }
	value := map[purchase]float64{}
	for _, r := range shownRecommendations(w, 8*24*time.Hour) {
		items := r.props["items"].([]any)
		for _, e := range w.events {
			var props map[string]any
			if e.Type != ingest.TypePurchase || e.UserID != r.e.UserID || !e.Timestamp.After(time.Now().Add(-7*24*time.Hour)) ||
				json.Unmarshal(e.Properties, &props) != nil {
				continue
			}
			sku, ok := props["sku"].(string)
			if ok && !e.Timestamp.Before(r.e.Timestamp) && e.Timestamp.Before(r.e.Timestamp.Add(24*time.Hour)) && slices.Contains(items, any(sku)) {
				value[purchase{r.props["strategy"].(string), e.ID.String()}] = e.Value
			}
		}
	}
	n, revenue := map[string]int{}, map[string]float64{}
	for p, v := range value {
		n[p.strategy]++
		revenue[p.strategy] += v
	}
	var out [][]string
	for _, st := range slices.Sorted(maps.Keys(n)) {
		out = append(out, []string{st, count(n[st]), num(revenue[st])})
	}
	return out
}
