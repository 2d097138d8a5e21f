package ingest_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/liftlab/lift/ingest"
)

var (
	now     = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	fixedID = uuid.MustParse("0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b")
	defs    = ingest.Defaults{ReceivedAt: now, NewID: func() uuid.UUID { return fixedID }}
)

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		wantFields []string // nil = valid
		check      func(t *testing.T, e ingest.Event)
	}{
		{"defaults", `{"type":"page_view","user_id":"u1"}`, nil, func(t *testing.T, e ingest.Event) {
			if e.ID != fixedID || !e.Timestamp.Equal(now) || !e.ReceivedAt.Equal(now) {
				t.Errorf("defaults not applied: %+v", e)
			}
		}},
		{"full purchase", `{"event_id":"0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a70","type":"purchase","user_id":"u1",
			"timestamp":"2026-03-10T11:00:00+01:00","value":12.5,"properties":{ "sku" : "a" }}`, nil, func(t *testing.T, e ingest.Event) {
			if e.ID.String() != "0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a70" || e.Value != 12.5 || string(e.Properties) != `{"sku":"a"}` ||
				!e.Timestamp.Equal(now.Add(-2*time.Hour)) {
				t.Errorf("got %+v", e)
			}
		}},
		{"exposure", `{"type":"$exposure","user_id":"u1","properties":{"experiment":"x","variant":"b","assignment_probability":0.5}}`, nil,
			func(t *testing.T, e ingest.Event) {
				if diff := cmp.Diff(&ingest.Exposure{Experiment: "x", Variant: "b", AssignmentProbability: 0.5}, e.Exposure); diff != "" {
					t.Error(diff)
				}
			}},
		{"consumer honours received_at", `{"type":"click","user_id":"u","timestamp":"2026-01-01T00:00:00Z","received_at":"2026-01-01T00:00:01Z"}`, nil, nil},
		{"not an object", `[1]`, []string{"(event)"}, nil},
		{"missing type and user", `{}`, []string{"type", "user_id"}, nil},
		{"unknown type", `{"type":"signup","user_id":"u"}`, []string{"type"}, nil},
		{"user_id not a string", `{"type":"click","user_id":7}`, []string{"user_id"}, nil},
		{"long user", `{"type":"click","user_id":"` + strings.Repeat("u", 257) + `"}`, []string{"user_id"}, nil},
		{"bad event_id", `{"event_id":"nope","type":"click","user_id":"u"}`, []string{"event_id"}, nil},
		{"too old", `{"type":"click","user_id":"u","timestamp":"2026-03-03T11:59:59Z"}`, []string{"timestamp"}, nil},
		{"future", `{"type":"click","user_id":"u","timestamp":"2026-03-10T12:05:01Z"}`, []string{"timestamp"}, nil},
		{"bad timestamp", `{"type":"click","user_id":"u","timestamp":"yesterday"}`, []string{"timestamp"}, nil},
		{"purchase without value", `{"type":"purchase","user_id":"u"}`, []string{"value"}, nil},
		{"negative purchase", `{"type":"purchase","user_id":"u","value":-1}`, []string{"value"}, nil},
		{"properties not object", `{"type":"click","user_id":"u","properties":[1]}`, []string{"properties"}, nil},
		{"exposure missing fields", `{"type":"$exposure","user_id":"u","properties":{"assignment_probability":2}}`,
			[]string{"properties.experiment", "properties.variant", "properties.assignment_probability"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ingest.ParseEvent([]byte(tt.raw), defs)
			var verr *ingest.ValidationError
			switch {
			case tt.wantFields == nil && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.wantFields == nil:
				if tt.check != nil {
					tt.check(t, e)
				}
			case !errors.As(err, &verr):
				t.Fatalf("got %v, want a validation error on %v", err, tt.wantFields)
			default:
				var got []string
				for _, f := range verr.Fields {
					got = append(got, f.Field)
				}
				if diff := cmp.Diff(tt.wantFields, got); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestParseRequest(t *testing.T) {
	events, rejected, err := ingest.ParseRequest([]byte(`{"events":[{"type":"click","user_id":"u"},{"type":"x"},{"type":"click","user_id":"v"}]}`), defs)
	if err != nil || len(events) != 2 || len(rejected) != 1 || rejected[0].Index != 1 || rejected[0].Reason != "type" {
		t.Fatalf("got %v %+v %v", events, rejected, err)
	}
	for _, body := range []string{`{"events":`, `[]`, `{}`, `{"events":{}}`} {
		if _, _, err := ingest.ParseRequest([]byte(body), defs); !errors.Is(err, ingest.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", body, err)
		}
	}
}

func TestParseMessage(t *testing.T) {
	body := []byte(`[{"type":"click","user_id":"u"},{"type":"nope","user_id":"u"},{"type":"click","user_id":"v"}]`)
	e1, inv := ingest.ParseMessage(body, now, nil)
	e2, _ := ingest.ParseMessage(body, now.Add(time.Minute), nil)
	if len(e1) != 2 || len(inv) != 1 || !strings.Contains(inv[0].Reason, "type") || string(inv[0].Raw) != `{"type":"nope","user_id":"u"}` {
		t.Fatalf("got %v, %v", e1, inv)
	}
	// Redelivery must give the same ids so storage dedups.
	if e1[0].ID != e2[0].ID || e1[0].ID == e1[1].ID {
		t.Errorf("derived ids not stable and distinct: %v %v %v", e1[0].ID, e2[0].ID, e1[1].ID)
	}
	if _, inv := ingest.ParseMessage([]byte(`{"type":`), now, nil); len(inv) != 1 {
		t.Errorf("malformed body: got %v", inv)
	}
}

func TestDedup(t *testing.T) {
	a, b := ingest.NewID(), ingest.NewID()
	got := ingest.Dedup([]ingest.Event{{ID: a, UserID: "1"}, {ID: b}, {ID: a, UserID: "2"}})
	if len(got) != 2 || got[0].UserID != "1" || got[1].ID != b {
		t.Errorf("got %+v", got)
	}
}

// FuzzParseEvent: any input is accepted as a valid event or refused with a reason,
// never a panic; accepted events respect every limit and come out of a consumer
// exactly as the collector published them.
func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		`{"type":"purchase","user_id":"u1","value":3,"properties":{"a":[1,{"b":null}]}}`,
		`{"event_id":"0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b","type":"click","user_id":"u","timestamp":"2026-03-10T12:00:00Z"}`,
		`{"type":"$exposure","user_id":"u","properties":{"experiment":"e","variant":"v","assignment_probability":1}}`,
		`[{"type":"click","user_id":"u"}]`, `null`, `{"value":1e400}`, `{"user_id":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := ingest.ParseEvent(raw, defs)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if e.Type == "" || e.UserID == "" || len(e.UserID) > ingest.MaxUserIDLen ||
			e.Timestamp.Before(e.ReceivedAt.Add(-ingest.MaxAge)) || e.Timestamp.After(e.ReceivedAt.Add(ingest.MaxSkew)) ||
			(e.Type == ingest.TypePurchase && e.Value < 0) || (e.Type == ingest.TypeExposure && e.Exposure == nil) {
			t.Fatalf("accepted an invalid event %+v", e)
		}
		body, err := ingest.AppendMessage(nil, []ingest.Event{e})
		if err != nil {
			t.Fatalf("accepted event does not encode: %v", err)
		}
		again, invalid := ingest.ParseMessage(body, e.ReceivedAt.Add(time.Hour), nil)
		if len(invalid) != 0 || len(again) != 1 {
			t.Fatalf("round trip failed: %v %v", again, invalid)
		}
		if diff := cmp.Diff(e, again[0]); diff != "" {
			t.Fatalf("round trip through %s (-published +consumed):\n%s", body, diff)
		}
		// What lift publishes is what encoding/json would have published.
		var mine, std any
		stdBody, _ := json.Marshal([]ingest.Event{e})
		if json.Unmarshal(body, &mine) != nil || json.Unmarshal(stdBody, &std) != nil || !cmp.Equal(mine, std) {
			t.Fatalf("published %s, encoding/json %s", body, stdBody)
		}
	})
}

// FuzzParseRequest: decoding a whole batch at once gives the same events and
// rejections as parsing each element on its own.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"events":[{"type":"click","user_id":"u"},null,{"type":"purchase","user_id":"u","value":-1},[1],{"user_id":7}]}`))
	f.Add([]byte(`{"events":[{"event_id":"0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b","type":"page_view","user_id":"u","properties":{"a":1}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, rejected, err := ingest.ParseRequest(body, defs)
		var req struct{ Events []json.RawMessage }
		if json.Unmarshal(body, &req) != nil || req.Events == nil {
			if err == nil {
				t.Fatalf("accepted a body that is not a batch")
			}
			return
		}
		if err != nil {
			t.Fatalf("refused a batch: %v", err)
		}
		var wantEvents []ingest.Event
		var wantRejected []int
		for i, raw := range req.Events {
			e, err := ingest.ParseEvent(raw, defs)
			if err != nil {
				wantRejected = append(wantRejected, i)
				continue
			}
			wantEvents = append(wantEvents, e)
		}
		var gotRejected []int
		for _, r := range rejected {
			gotRejected = append(gotRejected, r.Index)
		}
		if len(events) != len(wantEvents) || !cmp.Equal(gotRejected, wantRejected) {
			t.Fatalf("batch: %d events, rejected %v; one by one: %d events, rejected %v", len(events), gotRejected, len(wantEvents), wantRejected)
		}
		for i := range events {
			if events[i].ID != wantEvents[i].ID || string(events[i].Properties) != string(wantEvents[i].Properties) {
				t.Fatalf("event %d differs: %+v vs %+v", i, events[i], wantEvents[i])
			}
		}
	})
}
