package web_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// Consent on /v1/decide and OFREP, without the pipeline behind them (the end-to-end
// matrix is cmd/lift's TestConsentMatrixEndToEnd): personalisation decides whether
// the user is put in the experiment, analytics whether the exposure is logged.
func TestDecideConsent(t *testing.T) {
	for _, tc := range []struct {
		consent       string
		wantReason    string
		wantExposures int
	}{
		{``, "split", 1},
		{`,"consent":{"analytics":true,"personalization":true}`, "split", 1},
		{`,"consent":{"analytics":false,"personalization":true}`, "split", 0},
		{`,"consent":{"analytics":true,"personalization":false}`, "not_eligible", 0},
		{`,"consent":{}`, "not_eligible", 0},
	} {
		t.Run(tc.consent, func(t *testing.T) {
			exp := &evExposures{}
			h := newEventsHandler(t, &evPublisher{}, exp)
			rec := post(h, "/v1/decide", evClientKey, `{"user_id":"u1"`+tc.consent+`}`)
			var r struct {
				Decisions map[string]struct{ Variant, Reason string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || rec.Code != 200 {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if got := r.Decisions["hero"].Reason; got != tc.wantReason {
				t.Errorf("reason %s, want %s", got, tc.wantReason)
			}
			if len(exp.got) != tc.wantExposures {
				t.Errorf("%d exposures, want %d", len(exp.got), tc.wantExposures)
			}
		})
	}
	h := newEventsHandler(t, &evPublisher{}, &evExposures{})
	if rec := post(h, "/v1/decide", evClientKey, `{"user_id":"u1","consent":{"analytics":"yes"}}`); rec.Code != 400 ||
		!strings.Contains(rec.Body.String(), "consent.analytics") {
		t.Errorf("bad consent: %d %s", rec.Code, rec.Body)
	}
}

func TestOFREPConsent(t *testing.T) {
	h := newEventsHandler(t, &evPublisher{}, &evExposures{})
	for body, want := range map[string]string{
		`{"context":{"targetingKey":"u1"}}`:                                     "SPLIT",
		`{"context":{"targetingKey":"u1","consent":{"personalization":true}}}`:  "SPLIT",
		`{"context":{"targetingKey":"u1","consent":{"personalization":false}}}`: "STATIC",
		`{"context":{"targetingKey":"u1","consent":{}}}`:                        "STATIC",
	} {
		rec := post(h, "/ofrep/v1/evaluate/flags/hero", evClientKey, body)
		var r struct{ Reason string }
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || rec.Code != 200 || r.Reason != want {
			t.Errorf("%s: %d %s, want reason %s", body, rec.Code, rec.Body, want)
		}
	}
	rec := post(h, "/ofrep/v1/evaluate/flags/hero", evClientKey, `{"context":{"targetingKey":"u1","consent":{"personalization":"no"}}}`)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "INVALID_CONTEXT") {
		t.Errorf("bad consent: %d %s", rec.Code, rec.Body)
	}
}
