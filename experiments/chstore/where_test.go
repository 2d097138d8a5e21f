package chstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/migrations"
	"github.com/liftlab/lift/segments/condition"
)

// TestPropertyConditions checks metric conditions through the results API against
// the condition language run in Go on the same events' decoded properties: nested
// keys of the same name, arrays, numbers against numeric strings, missing keys and
// nulls, booleans, and strings ordered as JavaScript orders them. Half of the events
// go through the ingest sink (which extracts the properties in Go), half through a
// plain INSERT (the columns' DEFAULT expressions, as for rows stored before them).
func TestPropertyConditions(t *testing.T) {
	t.Parallel()
	conds := []string{
		`{"plan":"pro"}`,
		`{"plan":{"$ne":"pro"}}`,
		`{"plan":{"$in":["pro","team"]}}`,
		`{"price":{"$gt":10}}`,
		`{"price":12}`,
		`{"price":{"$lte":5}}`,
		`{"price":{"$exists":true}}`,
		`{"price":{"$exists":false}}`,
		`{"tags":{"$in":["sale"]}}`,
		`{"tags":{"$nin":["sale",7]}}`,
		`{"tags":"sale"}`,
		`{"tags":{"$in":[7,true]}}`,
		`{"coupon":{"$exists":true}}`,
		`{"coupon":{"$ne":"X"}}`,
		`{"gift":true}`,
		`{"gift":{"$in":[false]}}`,
		`{"$or":[{"plan":"team"},{"price":{"$lt":4}}]}`,
		`{"$nor":[{"plan":"pro"},{"gift":true}]}`,
		`{"name":{"$gt":"` + "\ue000" + `"}}`,
		`{"name":{"$lt":"b"}}`,
	}
	props := []string{
		`{"a":{"plan":"pro"},"plan":"free"}`,
		`{"plan":"pro","a":{"plan":"free"}}`,
		`{"plan":"pro"}`,
		`{"plan":"team","price":3}`,
		`{"price":"12"}`,
		`{"price":12}`,
		`{"price":12.5,"a":{"price":1}}`,
		`{"a":{"price":20},"price":"3"}`,
		`{"price":null}`,
		`{"price":5}`,
		`{"tags":["sale","new"]}`,
		`{"tags":["new",7]}`,
		`{"tags":"sale"}`,
		`{"tags":[["sale"]],"x":{"tags":"sale"}}`,
		`{"tags":[{"t":"sale"},true]}`,
		`{"tags":[]}`,
		`{"coupon":null}`,
		`{"coupon":"X"}`,
		`{"coupon":"Y","coupon":"X"}`,
		`{}`,
		`{"gift":true}`,
		`{"gift":"true"}`,
		`{"gift":1,"a":{"gift":true}}`,
		`{"gift":false}`,
		`{"name":"` + "\U0001F600" + `"}`,
		`{"name":"` + "\uffee" + `"}`,
		`{"name":"a"}`,
		`{"name":"b"}`,
	}
	var metrics []string
	for i, c := range conds {
		metrics = append(metrics, fmt.Sprintf(`{"key":"m%d","event":"purchase","kind":"conversion","where":%s}`, i, c))
	}
	rs, addr, db := setup(t, `{"key":"props","status":"running",
		"variants":[{"key":"control","weight":0.5},{"key":"bold","weight":0.5}],
		"goal":{"event":"purchase","kind":"conversion"},"metrics":[`+strings.Join(metrics, ",")+`]}`)

	// Three users per properties object and variant: one buys through the sink, one
	// through a plain insert, one does not buy.
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	var exps []exposure
	var batch []ingest.Event
	conn := migrations.OpenClickHouse(addr, db)
	defer conn.Close()
	want := make([]map[string]float64, len(conds))
	for i := range want {
		want[i] = map[string]float64{}
	}
	for pi, p := range props {
		var decoded map[string]any
		if err := json.Unmarshal([]byte(p), &decoded); err != nil {
			t.Fatal(p, err)
		}
		for _, variant := range []string{"control", "bold"} {
			for k := range 3 {
				user := fmt.Sprintf("%s-%d-%d", variant, pi, k)
				exps = append(exps, exposure{user, variant, "", start})
				at := start.Add(time.Hour)
				switch k {
				case 0:
					batch = append(batch, ingest.Event{ID: ingest.NewID(), Type: "purchase", UserID: user, Timestamp: at,
						ReceivedAt: at, Value: 1, Properties: []byte(p)})
				case 1:
					if _, err := conn.Exec(`INSERT INTO events (event_id, type, user_id, ts, received_at, value, properties)
						SELECT ?, 'purchase', ?, ?, ?, 1, ?`, uuid.New(), user, at, at, p); err != nil {
						t.Fatal(err)
					}
				default:
					continue
				}
				for ci, c := range conds {
					cond, err := condition.ParseConditionJSON([]byte(c))
					if err != nil {
						t.Fatal(c, err)
					}
					if cond.Match(decoded, nil) {
						want[ci][variant]++
					}
				}
			}
		}
	}
	insertFor(t, addr, db, "props", exps, nil)
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if err := sink.Insert(context.Background(), batch); err != nil {
		t.Fatal(err)
	}

	res, err := rs.Results(context.Background(), "props")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Metrics) != len(conds)+1 {
		t.Fatalf("%d metrics, want %d", len(res.Metrics), len(conds)+1)
	}
	for i, c := range conds {
		m := res.Metrics[i+1]
		for _, v := range m.Variants {
			if got := *v.Conversions; got != want[i][v.Key] {
				t.Errorf("%s: %s converted %v, want %v", c, v.Key, got, want[i][v.Key])
			}
		}
	}
}
