package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/recommend"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/web"
)

type impressions struct {
	mu  sync.Mutex
	got []recommend.Impression
}

func (l *impressions) Log(_ string, im recommend.Impression) {
	l.mu.Lock()
	l.got = append(l.got, im)
	l.mu.Unlock()
}

type discardImpressions struct{}

func (discardImpressions) Log(string, recommend.Impression) {}

// newRecommendHandler serves a recommender "similar" over lamps and mugs, an
// experiment "recs" whose arms choose the strategy, and users' recent items.
func newRecommendHandler(tb testing.TB, imp web.ImpressionLogger, exp web.ExposureLogger) http.Handler {
	tb.Helper()
	b := recommend.NewBuilder()
	for u := range 20 {
		user := fmt.Sprint(u)
		if u%2 == 0 {
			b.Add(user, "lamp", 1)
			b.Add(user, "shade", 1)
		} else {
			b.Add(user, "mug", 1)
			b.Add(user, "saucer", 1)
		}
	}
	m := recommend.Train(b, []recommend.ItemWeight{{Item: "poster", Weight: 9}, {Item: "mug", Weight: 3}}, recommend.Params{})
	m.Version = 7
	models := recommend.NewModels(nil)
	models.Set("similar", m)
	features := experiments.NewFeatureSet()
	rec := experiments.Recommender{Key: "similar", EventTypes: []string{"product_view"}, ItemProperty: "sku"}
	features.SetFeature(rec.FeatureKey(), "u1", json.RawMessage(`["lamp"]`))
	var e experiments.Experiment
	if err := json.Unmarshal([]byte(`{"key":"recs","status":"running","variants":[
		{"key":"popular","weight":0.5,"value":{"strategy":"popular"}},{"key":"cf","weight":0.5,"value":{"strategy":"similar"}}]}`), &e); err != nil {
		tb.Fatal(err)
	}
	e.Normalize()
	live := experiments.NewLive(evLoader{&experiments.Config{Experiments: []experiments.Experiment{e}, Recommenders: []experiments.Recommender{rec}}})
	live.FeatureValues = features
	if err := live.Reload(context.Background()); err != nil {
		tb.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	return web.New(web.Deps{Log: slog.New(slog.DiscardHandler), Snapshots: live, Keys: evKeys{}, Manager: listManager{},
		Ready: func(context.Context) map[string]error { return nil }, Registry: reg, MaxBodyBytes: 4096,
		Events: &evPublisher{}, EventMetrics: ingest.NewMetrics(reg), Exposures: exp,
		Recommendations: models, Impressions: imp})
}

func TestRecommendHandler(t *testing.T) {
	imp, exp := &impressions{}, &evExposures{}
	h := newRecommendHandler(t, imp, exp)
	tests := []struct {
		name, body string
		status     int
		want       string // items, comma-separated, or the error's field
	}{
		{"from recent items", `{"user_id":"u1","recommender":"similar","n":2}`, 200, "shade,poster"},
		{"a new user gets the popular items", `{"user_id":"u2","recommender":"similar","n":2}`, 200, "poster,mug"},
		{"exclusions", `{"user_id":"u1","recommender":"similar","n":1,"exclude":["shade"]}`, 200, "poster"},
		{"strategy forced", `{"user_id":"u1","recommender":"similar","n":1,"strategy":"popular"}`, 200, "poster"},
		{"no personalisation: popular only", `{"user_id":"u1","recommender":"similar","n":1,"consent":{"analytics":true,"personalization":false}}`, 200, "poster"},
		{"unknown recommender", `{"user_id":"u1","recommender":"nope"}`, 404, ""},
		{"unknown experiment", `{"user_id":"u1","recommender":"similar","experiment":"nope"}`, 404, ""},
		{"no user", `{"recommender":"similar"}`, 400, "user_id"},
		{"no recommender", `{"user_id":"u1"}`, 400, "recommender"},
		{"n too large", `{"user_id":"u1","recommender":"similar","n":101}`, 400, "n"},
		{"bad strategy", `{"user_id":"u1","recommender":"similar","strategy":"random"}`, 400, "strategy"},
		{"not JSON", `{"user_id":`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := post(h, "/v1/recommend", evClientKey, tt.body)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			var out struct {
				Items []struct {
					Item string `json:"item"`
				} `json:"items"`
				ModelVersion int64 `json:"model_version"`
				Fields       []struct {
					Field string `json:"field"`
				} `json:"fields"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range out.Items {
				got = append(got, it.Item)
			}
			for _, f := range out.Fields {
				got = append(got, f.Field)
			}
			if strings.Join(got, ",") != tt.want || tt.status == 200 && out.ModelVersion != 7 {
				t.Errorf("got %s (model %d), want %s", strings.Join(got, ","), out.ModelVersion, tt.want)
			}
		})
	}
	if len(imp.got) != 5 || imp.got[0].Recommender != "similar" || strings.Join(imp.got[0].Items, ",") != "shade,poster" {
		t.Errorf("impressions logged: %+v", imp.got)
	}
	if post(h, "/v1/recommend", evServerKey, `{"user_id":"u1","recommender":"similar"}`).Code != 200 {
		t.Error("server keys may recommend too")
	}
	if post(h, "/v1/recommend", "", `{"user_id":"u1","recommender":"similar"}`).Code != 401 {
		t.Error("no key: want 401")
	}
}

// An experiment's arm chooses the strategy; with track false nothing is logged and
// the answer carries the impression and exposure to send when rendered.
func TestRecommendExperiment(t *testing.T) {
	imp, exp := &impressions{}, &evExposures{}
	h := newRecommendHandler(t, imp, exp)
	arms := map[string]int{}
	for u := range 40 {
		body := fmt.Sprintf(`{"user_id":"user-%d","recommender":"similar","experiment":"recs","n":1}`, u)
		rec := post(h, "/v1/recommend", evClientKey, body)
		var out struct{ Experiment, Variant, Strategy string }
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		if rec.Code != 200 || out.Experiment != "recs" || (out.Variant == "cf") != (out.Strategy == "similar") {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		arms[out.Variant]++
	}
	if arms["cf"] == 0 || arms["popular"] == 0 || len(exp.got) != 40 || len(imp.got) != 40 {
		t.Errorf("arms %v, %d exposures and %d impressions logged, want 40 each", arms, len(exp.got), len(imp.got))
	}
	rec := post(h, "/v1/recommend", evClientKey, `{"user_id":"u1","recommender":"similar","experiment":"recs","track":false}`)
	var out struct {
		Impression map[string]any `json:"impression"`
		Exposure   map[string]any `json:"exposure"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	if out.Impression["recommender"] != "similar" || out.Exposure["experiment"] != "recs" || len(exp.got) != 40 || len(imp.got) != 40 {
		t.Errorf("track false: %s; logged %d, %d", rec.Body, len(exp.got), len(imp.got))
	}
}

// BenchmarkRecommendHandler measures POST /v1/recommend through the whole handler.
func BenchmarkRecommendHandler(b *testing.B) {
	h := newRecommendHandler(b, discardImpressions{}, &evExposures{})
	body := `{"user_id":"u1","recommender":"similar","n":10}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/recommend", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+evClientKey)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}
