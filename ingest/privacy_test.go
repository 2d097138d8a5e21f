package ingest_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/liftlab/lift/ingest"
)

func pseudonymizer(t testing.TB, key string) *ingest.Pseudonymizer {
	t.Helper()
	p, err := ingest.NewPseudonymizer([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPseudonymize(t *testing.T) {
	p := pseudonymizer(t, "0123456789abcdef-key-one")
	q := pseudonymizer(t, "0123456789abcdef-key-two")
	a := p.Pseudonymize("alice@example.com")
	switch {
	case !ingest.IsPseudonym(a) || !strings.HasPrefix(a, ingest.PseudonymPrefix):
		t.Fatalf("pseudonym %q has the wrong form", a)
	case p.Pseudonymize("alice@example.com") != a:
		t.Error("not stable")
	case p.Pseudonymize(a) != a:
		t.Error("not idempotent")
	case p.Pseudonymize("bob") == a:
		t.Error("two users share a pseudonym")
	case q.Pseudonymize("alice@example.com") == a:
		t.Error("another key gives the same pseudonym")
	case strings.Contains(a, "alice"):
		t.Error("pseudonym contains the id")
	}
	var none *ingest.Pseudonymizer
	if none.Pseudonymize("alice") != "alice" {
		t.Error("nil pseudonymizer changed the id")
	}
	if _, err := ingest.NewPseudonymizer([]byte("short")); err == nil {
		t.Error("short key accepted")
	}
	for _, id := range []string{"", "lp_", "lp_AAAAAAAAAAAAAAAAAAAAAAAAAA", "lp_aaaaaaaaaaaaaaaaaaaaaaaaa", "lp_aaaaaaaaaaaaaaaaaaaaaaaaa1"} {
		if ingest.IsPseudonym(id) {
			t.Errorf("IsPseudonym(%q)", id)
		}
	}
}

// FuzzPseudonymize: every id maps to a pseudonym that maps to itself.
func FuzzPseudonymize(f *testing.F) {
	for _, s := range []string{"", "u1", "alice@example.com", "lp_aaaaaaaaaaaaaaaaaaaaaaaaaa", "ü"} {
		f.Add(s)
	}
	p := pseudonymizer(f, "0123456789abcdef")
	f.Fuzz(func(t *testing.T, id string) {
		ps := p.Pseudonymize(id)
		if !ingest.IsPseudonym(ps) || p.Pseudonymize(ps) != ps {
			t.Fatalf("Pseudonymize(%q) = %q", id, ps)
		}
	})
}

// The request's consent goes to every event without its own.
func TestParseRequestConsent(t *testing.T) {
	d := ingest.Defaults{ReceivedAt: time.Now(), NewID: ingest.NewID}
	for _, body := range []string{
		`{"consent":{"analytics":false,"personalization":true},"events":[{"type":"click","user_id":"a"},{"type":"click","user_id":"b","consent":{"analytics":true}}]}`,
		// A type mismatch takes the event-by-event path.
		`{"consent":{"analytics":false,"personalization":true},"events":[{"type":"click","user_id":"a"},{"type":"click","user_id":"b","consent":{"analytics":true}},{"type":1}]}`,
	} {
		events, _, err := ingest.ParseRequest([]byte(body), d)
		if err != nil || len(events) != 2 {
			t.Fatalf("%d events, err %v", len(events), err)
		}
		got := []ingest.Consent{*events[0].Consent, *events[1].Consent}
		want := []ingest.Consent{{Analytics: false, Personalization: true}, {Analytics: true}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("consents (-want +got):\n%s", diff)
		}
	}
	events, _, _ := ingest.ParseRequest([]byte(`{"events":[{"type":"click","user_id":"a"}]}`), d)
	if events[0].Consent != nil {
		t.Errorf("consent %+v from nowhere", events[0].Consent)
	}
}

// The consent matrix at the collector and at each consumer: which events each
// keeps, and what is counted as left out.
func TestPrivacyConsent(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := &ingest.Privacy{Metrics: ingest.NewPrivacyMetrics(reg)}
	mk := func() []ingest.Event {
		var events []ingest.Event
		for _, c := range []*ingest.Consent{
			nil, {Analytics: true, Personalization: true}, {Analytics: true}, {Personalization: true}, {},
		} {
			events = append(events, ingest.Event{Type: "click", UserID: fmt.Sprint(c), Consent: c})
		}
		return events
	}
	ids := func(events []ingest.Event) []string {
		var out []string
		for _, e := range events {
			out = append(out, e.UserID)
		}
		return out
	}
	all := ids(mk())
	if diff := cmp.Diff(all[:4], ids(p.Collected(mk()))); diff != "" {
		t.Errorf("collector (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(all[:3], ids(p.Consumed(mk(), ingest.ForAnalytics))); diff != "" {
		t.Errorf("ingest consumer (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{all[0], all[1], all[3]}, ids(p.Consumed(mk(), ingest.ForPersonalization))); diff != "" {
		t.Errorf("segment engine (-want +got):\n%s", diff)
	}
	// Collector: one event consented to nothing (both purposes); ingest: two without
	// analytics; segments: two without personalisation.
	if got := counterValue(t, p.Metrics.Unconsented.WithLabelValues("click", "analytics")); got != 3 {
		t.Errorf("unconsented analytics = %v, want 3", got)
	}
	if got := counterValue(t, p.Metrics.Unconsented.WithLabelValues("click", "personalization")); got != 3 {
		t.Errorf("unconsented personalization = %v, want 3", got)
	}

	strict := &ingest.Privacy{RequireConsent: true}
	if got := strict.Collected(mk()); len(got) != 3 {
		t.Errorf("with consent required, the collector kept %v", ids(got))
	}
	if got := strict.Consent(nil); got != (ingest.Consent{}) {
		t.Errorf("required consent defaults to %+v", got)
	}
	var none *ingest.Privacy
	if got := none.Consent(nil); got != ingest.Granted {
		t.Errorf("default consent %+v", got)
	}
}

func TestPrivacyProtects(t *testing.T) {
	reg := prometheus.NewRegistry()
	ps := pseudonymizer(t, "0123456789abcdef")
	p := &ingest.Privacy{Pseudonymizer: ps, Scrubber: defaultScrubber(t), Metrics: ingest.NewPrivacyMetrics(reg)}
	events := p.Collected([]ingest.Event{
		{Type: "click", UserID: "alice", Properties: json.RawMessage(`{"email":"a@example.com","q":"b@example.com","k":1}`)},
		{Type: "click", UserID: ps.Pseudonymize("bob"), Properties: json.RawMessage(`{"k":2}`)},
	})
	if events[0].UserID != ps.Pseudonymize("alice") || events[1].UserID != ps.Pseudonymize("bob") {
		t.Errorf("user ids %q, %q", events[0].UserID, events[1].UserID)
	}
	if string(events[0].Properties) != `{"k":1}` || string(events[1].Properties) != `{"k":2}` {
		t.Errorf("properties %s, %s", events[0].Properties, events[1].Properties)
	}
	// The consumers see the same events unchanged.
	again := p.Consumed(append([]ingest.Event(nil), events...), ingest.ForAnalytics)
	if diff := cmp.Diff(events, again); diff != "" {
		t.Errorf("second pass changed events (-first +second):\n%s", diff)
	}
	for reason, want := range map[string]float64{"property": 1, "email": 1, "phone": 0} {
		if got := counterValue(t, p.Metrics.Scrubbed.WithLabelValues(reason)); got != want {
			t.Errorf("scrubbed %s = %v, want %v", reason, got, want)
		}
	}
	// $identify links an anonymous id to the user: both are pseudonymised.
	identify := p.Collected([]ingest.Event{{Type: ingest.TypeIdentify, UserID: "alice",
		Properties: json.RawMessage(`{"anonymous_id":"0190b3c4-anon","k":1}`)}})
	want := `{"anonymous_id":"` + ps.Pseudonymize("0190b3c4-anon") + `","k":1}`
	if string(identify[0].Properties) != want {
		t.Errorf("$identify properties %s, want %s", identify[0].Properties, want)
	}
	if got := p.UserID("alice"); got != ps.Pseudonymize("alice") {
		t.Errorf("UserID = %q", got)
	}
}

// BenchmarkPrivacy: the policy over the 100 events of BenchmarkParseRequest, at the
// collector (raw ids) and again at a consumer (already protected): compare with
// BenchmarkParseRequest's time per request.
func BenchmarkPrivacy(b *testing.B) {
	body := []byte(`{"events":` + string(benchBody(false)) + `}`)
	events, _, err := ingest.ParseRequest(body, ingest.Defaults{ReceivedAt: time.Now(), NewID: ingest.NewID})
	if err != nil {
		b.Fatal(err)
	}
	ps := pseudonymizer(b, "0123456789abcdef")
	p := &ingest.Privacy{Pseudonymizer: ps, Scrubber: defaultScrubber(b), Metrics: ingest.NewPrivacyMetrics(prometheus.NewRegistry())}
	buf := make([]ingest.Event, len(events))
	b.Run("collector", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			copy(buf, events)
			p.Collected(buf)
		}
	})
	protected := p.Collected(append([]ingest.Event(nil), events...))
	b.Run("consumer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			copy(buf, protected)
			p.Consumed(buf, ingest.ForAnalytics)
		}
	})
	b.Run("off", func(b *testing.B) {
		var off *ingest.Privacy
		for b.Loop() {
			copy(buf, events)
			off.Collected(buf)
		}
	})
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// BenchmarkPseudonymize: what pseudonymisation adds to each /v1/decide and OFREP
// call (and to each event from the collector).
func BenchmarkPseudonymize(b *testing.B) {
	p := pseudonymizer(b, "0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		p.Pseudonymize("user-12345678@example.com")
	}
}
