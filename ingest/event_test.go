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
	"github.com/liftlab/lift/internal/derrors"
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
		// The collector never believes a client's receive time (TestParseMessageTimes
		// has the consumer's side).
		{"collector refuses received_at", `{"type":"click","user_id":"u","timestamp":"2026-03-10T11:00:00Z","received_at":"2026-03-10T11:00:01Z"}`, []string{"received_at"}, nil},
		{"received_at in 2105 moves no limit", `{"type":"click","user_id":"u","timestamp":"2105-01-01T00:00:00Z","received_at":"2105-01-01T00:00:01Z"}`,
			[]string{"received_at", "timestamp"}, nil},
		{"timestamp past storage", `{"type":"click","user_id":"u","timestamp":"2106-02-07T06:28:16Z"}`, []string{"timestamp"}, nil},
		{"largest value", `{"type":"purchase","user_id":"u","value":1e12}`, nil, nil},
		{"value too large", `{"type":"purchase","user_id":"u","value":3e15}`, []string{"value"}, nil},
		{"value too small", `{"type":"click","user_id":"u","value":-1.5e12}`, []string{"value"}, nil},
		{"value beyond float64", `{"type":"purchase","user_id":"u","value":1e309}`, []string{"value"}, nil},
		{"value not a number", `{"type":"purchase","user_id":"u","value":"NaN"}`, []string{"value"}, nil},
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
			var verr *derrors.ValidationError
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
	if _, _, err := ingest.ParseRequest([]byte(`{"events":`), defs); !errors.Is(err, derrors.ErrMalformed) {
		t.Errorf("truncated body: got %v, want ErrMalformed", err)
	}
	// JSON of another shape: the error names what is wrong with the envelope.
	for body, field := range map[string]string{`[]`: "(body)", `{}`: "events", `{"events":{}}`: "events", `{"user_id":"u"}`: "events"} {
		_, _, err := ingest.ParseRequest([]byte(body), defs)
		var v *derrors.ValidationError
		if !errors.As(err, &v) || v.Fields[0].Field != field {
			t.Errorf("%s: got %v, want a validation error naming %s", body, err, field)
		}
	}
	// One event on its own, without {"events":[...]}.
	events, rejected, err = ingest.ParseRequest([]byte(`{"type":"click","user_id":"u","properties":{"a":1}}`), defs)
	if err != nil || len(events) != 1 || events[0].UserID != "u" || string(events[0].Properties) != `{"a":1}` || len(rejected) != 0 {
		t.Errorf("single event: got %+v %+v %v", events, rejected, err)
	}
	_, rejected, err = ingest.ParseRequest([]byte(`{"type":"click"}`), defs)
	if err != nil || len(rejected) != 1 || rejected[0].Index != 0 || rejected[0].Error != "user_id: is required" {
		t.Errorf("single invalid event: got %+v %v", rejected, err)
	}
}

// The collector names the field and the range of a value out of range, also for a
// number float64 cannot hold, which the fast path leaves to encoding/json.
func TestParseRequestValueRange(t *testing.T) {
	body := `{"events":[{"type":"purchase","user_id":"u","value":1e309},{"type":"purchase","user_id":"u","value":3e15},{"type":"purchase","user_id":"u","value":-1e400}]}`
	events, rejected, err := ingest.ParseRequest([]byte(body), defs)
	if err != nil || len(events) != 0 || len(rejected) != 3 {
		t.Fatalf("got %v %+v %v, want three rejections", events, rejected, err)
	}
	for _, r := range rejected {
		if r.Reason != "value" || r.Error != "value: must be a finite number between -1e12 and 1e12" {
			t.Errorf("rejection %+v, want value's range", r)
		}
	}
}

// A consumer behind the broker believes received_at, as far as its own clock allows:
// a backlog is judged by when it was received, not by when it was consumed; a receive
// time beyond MaxSkew ahead of the clock or MaxBacklog behind it is refused. The
// message's timestamp stands in for a missing received_at within the same bounds.
func TestParseMessageTimes(t *testing.T) {
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	tests := []struct {
		name         string
		event        string
		published    time.Time
		wantReceived time.Time // zero: invalid
		wantReason   string
	}{
		{"backlog of a day", `{"type":"click","user_id":"u","timestamp":"` + at(-25*time.Hour) + `","received_at":"` + at(-24*time.Hour) + `"}`,
			time.Time{}, now.Add(-24 * time.Hour), ""},
		{"received_at within the skew", `{"type":"click","user_id":"u","received_at":"` + at(4*time.Minute) + `"}`,
			time.Time{}, now.Add(4 * time.Minute), ""},
		{"received_at in 2105", `{"type":"click","user_id":"u","timestamp":"2105-01-01T00:00:00Z","received_at":"2105-01-01T00:00:00Z"}`,
			time.Time{}, time.Time{}, "received_at: is more than 5 minutes after the server's clock"},
		{"received_at past the backlog", `{"type":"click","user_id":"u","received_at":"` + at(-31*24*time.Hour) + `"}`,
			time.Time{}, time.Time{}, "received_at: is more than 30 days before the server's clock"},
		{"published time stands in", `{"type":"click","user_id":"u"}`, now.Add(-time.Hour), now.Add(-time.Hour), ""},
		{"published time from the future ignored", `{"type":"click","user_id":"u"}`, time.Date(2105, 1, 1, 0, 0, 0, 0, time.UTC), now, ""},
		{"published time in 1970 ignored", `{"type":"click","user_id":"u"}`, time.Unix(1, 0), now, ""},
		{"timestamp against the received_at", `{"type":"click","user_id":"u","timestamp":"` + at(-2*time.Hour) + `","received_at":"` + at(-2*time.Hour-6*time.Minute) + `"}`,
			time.Time{}, time.Time{}, "timestamp: is more than 5 minutes after the receive time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, invalid := ingest.ParseMessage([]byte(tt.event), now, tt.published, nil)
			if tt.wantReceived.IsZero() {
				if len(events) != 0 || len(invalid) != 1 || !strings.HasPrefix(invalid[0].Reason, tt.wantReason) {
					t.Fatalf("got %+v, invalid %+v; want invalid: %s", events, invalid, tt.wantReason)
				}
				return
			}
			if len(events) != 1 {
				t.Fatalf("invalid: %+v", invalid)
			}
			if !events[0].ReceivedAt.Equal(tt.wantReceived) {
				t.Errorf("received_at %v, want %v", events[0].ReceivedAt, tt.wantReceived)
			}
		})
	}
}

func TestParseMessage(t *testing.T) {
	body := []byte(`[{"type":"click","user_id":"u"},{"type":"nope","user_id":"u"},{"type":"click","user_id":"v"}]`)
	e1, inv := ingest.ParseMessage(body, now, time.Time{}, nil)
	e2, _ := ingest.ParseMessage(body, now.Add(time.Minute), time.Time{}, nil)
	if len(e1) != 2 || len(inv) != 1 || !strings.Contains(inv[0].Reason, "type") || string(inv[0].Raw) != `{"type":"nope","user_id":"u"}` {
		t.Fatalf("got %v, %v", e1, inv)
	}
	// Redelivery must give the same ids so storage dedups.
	if e1[0].ID != e2[0].ID || e1[0].ID == e1[1].ID {
		t.Errorf("derived ids not stable and distinct: %v %v %v", e1[0].ID, e2[0].ID, e1[1].ID)
	}
	if _, inv := ingest.ParseMessage([]byte(`{"type":`), now, time.Time{}, nil); len(inv) != 1 {
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
		again, invalid := ingest.ParseMessage(body, e.ReceivedAt.Add(time.Hour), time.Time{}, nil)
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

// FuzzCheckTimes: the collector's and the consumer's time handling over any
// timestamp, received_at and server clock never panics; what it accepts lies within
// what storage holds, within MaxAge before and MaxSkew after the receive time, which
// itself is the server's clock unless a trusted input moved it by at most MaxBacklog
// back or MaxSkew forward; and a valid RFC 3339 timestamp within those bounds is
// accepted as that instant.
func FuzzCheckTimes(f *testing.F) {
	for _, c := range []struct {
		ts, received string
		now          int64
		trusted      bool
	}{
		{"2026-03-10T12:00:00Z", "", now.Unix(), false},
		{"2105-01-01T00:00:00Z", "2105-01-01T00:00:00Z", now.Unix(), false},
		{"2105-01-01T00:00:00Z", "2105-01-01T00:00:00Z", now.Unix(), true},
		{"2106-02-07T06:28:15Z", "", time.Date(2106, 2, 7, 6, 28, 0, 0, time.UTC).Unix(), false},
		{"2106-02-07T06:30:15+01:00", "", time.Date(2106, 2, 7, 6, 28, 0, 0, time.UTC).Unix(), true},
		{"1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z", 3600, true},
		{"9999-12-31T23:59:59Z", "", 253402300799, false},
		{"0000-01-01T00:00:00Z", "", -62167219200, false},
		{"2026-03-10T12:00:00,5Z", "yesterday", now.Unix(), true},
	} {
		f.Add(c.ts, c.received, c.now, c.trusted)
	}
	f.Fuzz(func(t *testing.T, ts, received string, nowUnix int64, trusted bool) {
		clock := time.Unix(nowUnix, 0).UTC()
		raw, _ := json.Marshal(map[string]string{"type": "click", "user_id": "u", "timestamp": ts})
		if received != "" {
			raw, _ = json.Marshal(map[string]string{"type": "click", "user_id": "u", "timestamp": ts, "received_at": received})
		}
		d := ingest.Defaults{ReceivedAt: clock, TrustReceivedAt: trusted, NewID: defs.NewID}
		var e ingest.Event
		var err error
		if trusted {
			events, invalid := ingest.ParseMessage(raw, clock, time.Time{}, nil)
			if len(events) == 1 {
				e = events[0]
			} else {
				err = errors.New(invalid[0].Reason)
			}
		} else {
			events, rejected, perr := ingest.ParseRequest([]byte(`{"events":[`+string(raw)+`]}`), d)
			switch {
			case perr != nil:
				t.Fatalf("%s: %v", raw, perr)
			case len(events) == 1:
				e = events[0]
			default:
				err = errors.New(rejected[0].Error)
			}
		}
		inStorage := func(x time.Time) bool { return !x.Before(ingest.MinTime) && !x.After(ingest.MaxTime) }
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			parsed, perr := time.Parse(time.RFC3339Nano, ts)
			if received == "" && perr == nil && inStorage(clock) && inStorage(parsed) &&
				!parsed.Before(clock.Add(-ingest.MaxAge)) && !parsed.After(clock.Add(ingest.MaxSkew)) {
				t.Fatalf("refused %s at %v: %v", raw, clock, err)
			}
			return
		}
		switch {
		case received != "" && !trusted:
			t.Fatalf("the collector took a received_at: %s", raw)
		case !inStorage(e.Timestamp) || !inStorage(e.ReceivedAt):
			t.Fatalf("%s at %v: accepted times %v, %v outside storage", raw, clock, e.Timestamp, e.ReceivedAt)
		case e.Timestamp.Before(e.ReceivedAt.Add(-ingest.MaxAge)) || e.Timestamp.After(e.ReceivedAt.Add(ingest.MaxSkew)):
			t.Fatalf("%s: timestamp %v too far from received_at %v", raw, e.Timestamp, e.ReceivedAt)
		case e.ReceivedAt.Before(clock.Add(-ingest.MaxBacklog)) || e.ReceivedAt.After(clock.Add(ingest.MaxSkew)):
			t.Fatalf("%s: received_at %v too far from the clock %v", raw, e.ReceivedAt, clock)
		case received == "" && !e.ReceivedAt.Equal(clock):
			t.Fatalf("%s: received_at %v, want the clock %v", raw, e.ReceivedAt, clock)
		}
	})
}
