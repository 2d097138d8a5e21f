package web_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/web"
)

// newBoundsHandler serves a running experiment "hero" and a flag "hero-flag" that runs
// it, with a 1 MiB body limit (the default), logging exposures into exp.
func newBoundsHandler(t *testing.T, exp *evExposures) http.Handler {
	t.Helper()
	var cfg experiments.Config
	if err := json.Unmarshal([]byte(`{
		"experiments":[{"key":"hero","type":"ab","status":"running",
			"variants":[{"key":"control","weight":0.5},{"key":"bold","weight":0.5}]}],
		"flags":[{"key":"hero-flag","type":"string","default":"x","enabled":true,"rules":[{"experiment":"hero"}]}]}`), &cfg); err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Experiments {
		cfg.Experiments[i].Normalize()
	}
	for i := range cfg.Flags {
		cfg.Flags[i].Normalize()
	}
	live := experiments.NewLive(evLoader{&cfg})
	if err := live.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	return web.New(web.Deps{
		Log: slog.New(slog.DiscardHandler), Snapshots: live, Keys: evKeys{}, Manager: listManager{},
		Ready:    func(context.Context) map[string]error { return nil },
		Registry: reg, MaxBodyBytes: 1 << 20,
		Events: &evPublisher{}, EventMetrics: ingest.NewMetrics(reg), Exposures: exp,
	})
}

func repeated(key string, n int) string {
	b, _ := json.Marshal(slices.Repeat([]string{key}, n))
	return string(b)
}

// Finding 5 of issue 17: one request naming a key 65,000 times was decided 65,000
// times and logged 65,000 exposures, filling the exposure buffer. Now repeats are
// decided once, more than web.MaxDecideKeys keys get a 400 naming "keys", and one
// request logs at most one exposure per experiment.
func TestDecideBounds(t *testing.T) {
	distinct := make([]string, web.MaxDecideKeys+1)
	for i := range distinct {
		distinct[i] = "k" + strconv.Itoa(i)
	}
	tooMany, _ := json.Marshal(distinct)
	tests := []struct {
		name          string
		keys          string // JSON; "" = no keys field (everything)
		wantStatus    int
		wantDecisions []string
		wantExposures int
	}{
		{"one key", `["hero"]`, 200, []string{"hero"}, 1},
		{"a key repeated up to the cap", repeated("hero", web.MaxDecideKeys), 200, []string{"hero"}, 1},
		{"a key repeated 65,000 times", repeated("hero", 65_000), 400, nil, 0},
		{"more distinct keys than the cap", string(tooMany), 400, nil, 0},
		{"an experiment and the flag that runs it", `["hero","hero-flag","hero"]`, 200, []string{"hero", "hero-flag"}, 1},
		{"everything", "", 200, []string{"hero", "hero-flag"}, 1},
		{"unknown keys are left out, as before", `["nope","hero","nope"]`, 200, []string{"hero"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp := &evExposures{}
			body := `{"user_id":"u1"}`
			if tt.keys != "" {
				body = `{"user_id":"u1","keys":` + tt.keys + `}`
			}
			rec := post(newBoundsHandler(t, exp), "/v1/decide", evClientKey, body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %.300s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus == 400 {
				var e struct {
					Fields []struct{ Field, Message string }
				}
				if json.Unmarshal(rec.Body.Bytes(), &e) != nil || len(e.Fields) != 1 || e.Fields[0].Field != "keys" ||
					!strings.Contains(e.Fields[0].Message, strconv.Itoa(web.MaxDecideKeys)) {
					t.Errorf("400 body %s, want the field keys and the limit", rec.Body)
				}
			} else {
				// Decoded as a list of members, so a key answered twice shows.
				var got []string
				dec := json.NewDecoder(strings.NewReader(rec.Body.String()))
				for tok, err := dec.Token(); err == nil; tok, err = dec.Token() {
					if k, ok := tok.(string); ok && k == "decisions" {
						break
					}
				}
				_, _ = dec.Token() // {
				for dec.More() {
					k, _ := dec.Token()
					got = append(got, k.(string))
					var skip json.RawMessage
					_ = dec.Decode(&skip)
				}
				if g := strings.Join(got, ","); g != strings.Join(tt.wantDecisions, ",") {
					t.Errorf("%d decisions for %.100s, want %v", len(got), g, tt.wantDecisions)
				}
			}
			if len(exp.got) != tt.wantExposures {
				t.Errorf("%d exposures logged, want %d", len(exp.got), tt.wantExposures)
			}
		})
	}
}

// OFREP bulk names no keys: it evaluates every experiment and flag once and logs no
// exposures (lift.js's OpenFeature hook logs one when a variant is shown).
func TestOFREPBulkBounds(t *testing.T) {
	exp := &evExposures{}
	rec := post(newBoundsHandler(t, exp), "/ofrep/v1/evaluate/flags", evClientKey, `{"context":{"targetingKey":"u1"}}`)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var bulk struct{ Flags []struct{ Key string } }
	if err := json.Unmarshal(rec.Body.Bytes(), &bulk); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, f := range bulk.Flags {
		keys = append(keys, f.Key)
	}
	if strings.Join(keys, ",") != "hero,hero-flag" || len(exp.got) != 0 {
		t.Errorf("flags %v and %d exposures, want hero,hero-flag and none", keys, len(exp.got))
	}
}
