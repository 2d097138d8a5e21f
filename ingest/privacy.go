package ingest

import (
	"encoding/json"

	"github.com/prometheus/client_golang/prometheus"
)

// Privacy is what lift does to every event before it is published, stored or used
// (docs/privacy.md): user ids pseudonymised, properties scrubbed, events used only for
// what the user consented to. The zero value (and nil) changes nothing but consent.
//
// The collector applies it at the edge (Collected); the consumers apply it again
// (Consumed) because backends may publish raw events straight to RabbitMQ. Both steps
// are idempotent, so events from the collector pass the second time unchanged.
type Privacy struct {
	Pseudonymizer *Pseudonymizer // nil: user ids are kept as sent
	Scrubber      *Scrubber      // nil: properties are kept as sent
	// RequireConsent makes a client request that carries no consent count as
	// consent to nothing. It applies at the edge only: an event published to
	// RabbitMQ without a consent is taken as consented, the publisher's call.
	RequireConsent bool
	Metrics        *PrivacyMetrics // nil: not counted
}

// PrivacyMetrics count what the policy removed and left out.
type PrivacyMetrics struct {
	Scrubbed    *prometheus.CounterVec // by reason
	Unconsented *prometheus.CounterVec // by type and purpose
}

// NewPrivacyMetrics creates the series and registers them with reg.
func NewPrivacyMetrics(reg prometheus.Registerer) *PrivacyMetrics {
	m := &PrivacyMetrics{
		Scrubbed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lift_properties_scrubbed_total",
			Help: "Event properties removed before publishing or storing, by reason (property, email, phone, card, ip).",
		}, []string{"reason"}),
		Unconsented: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lift_events_unconsented_total",
			Help: "Events counted but not used for a purpose the user did not consent to (analytics: not stored; personalization: not fed to segments), by type.",
		}, []string{"type", "purpose"}),
	}
	for r := range numScrubReasons {
		m.Scrubbed.WithLabelValues(r.String()) // so every reason is exported from the start
	}
	reg.MustRegister(m.Scrubbed, m.Unconsented)
	return m
}

// UserID is the id lift uses for a user a client names: its pseudonym when
// pseudonymisation is on.
func (p *Privacy) UserID(id string) string {
	if p == nil {
		return id
	}
	return p.Pseudonymizer.Pseudonymize(id)
}

// Consent resolves the consent of a client request: what it says, else everything
// or (with RequireConsent) nothing.
func (p *Privacy) Consent(c *Consent) Consent {
	switch {
	case c != nil:
		return *c
	case p != nil && p.RequireConsent:
		return Consent{}
	}
	return Granted
}

// Collected protects the events of a collector request, in place: each gets the
// consent it will travel with, and the events consented to nothing are dropped (and
// counted), since nothing may be done with them.
func (p *Privacy) Collected(events []Event) []Event {
	if p != nil && p.RequireConsent {
		denied := &Consent{}
		for i := range events {
			if events[i].Consent == nil {
				events[i].Consent = denied
			}
		}
	}
	return p.protect(events, ForAnalytics|ForPersonalization)
}

// Consumed protects events a consumer took from RabbitMQ, in place, and returns those
// it may use for purpose; the others are counted.
func (p *Privacy) Consumed(events []Event, purpose Purpose) []Event {
	return p.protect(events, purpose)
}

func (p *Privacy) protect(events []Event, purpose Purpose) []Event {
	out := events[:0]
	for i := range events {
		e := &events[i]
		if !e.Consent.Allows(purpose) {
			p.countUnconsented(e, purpose)
			continue
		}
		if p != nil {
			e.UserID = p.Pseudonymizer.Pseudonymize(e.UserID)
			if e.Type == TypeIdentify && p.Pseudonymizer != nil {
				e.Properties = pseudonymizeAnonymousID(e.Properties, p.Pseudonymizer)
			}
			if p.Scrubber != nil && len(e.Properties) > 0 {
				var n Scrubbed
				e.Properties, n = p.Scrubber.Scrub(e.Properties)
				p.countScrubbed(n)
			}
		}
		out = append(out, *e)
	}
	clear(events[len(out):]) // drop references to what was left out
	return out
}

// pseudonymizeAnonymousID replaces the anonymous id an $identify event links to its
// user with that id's pseudonym, so the two histories still join in storage.
func pseudonymizeAnonymousID(props json.RawMessage, ps *Pseudonymizer) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(props, &m) != nil {
		return props
	}
	var anon string
	if json.Unmarshal(m["anonymous_id"], &anon) != nil || anon == "" || IsPseudonym(anon) {
		return props
	}
	m["anonymous_id"], _ = json.Marshal(ps.Pseudonymize(anon)) // a string: cannot fail
	out, err := json.Marshal(m)
	if err != nil {
		return props
	}
	return out
}

func (p *Privacy) countUnconsented(e *Event, purpose Purpose) {
	if p == nil || p.Metrics == nil {
		return
	}
	for _, one := range []Purpose{ForAnalytics, ForPersonalization} {
		if purpose&one != 0 {
			p.Metrics.Unconsented.WithLabelValues(e.Type, one.String()).Inc()
		}
	}
}

func (p *Privacy) countScrubbed(n Scrubbed) {
	if p.Metrics == nil || n.Total() == 0 {
		return
	}
	for r, c := range n {
		if c > 0 {
			p.Metrics.Scrubbed.WithLabelValues(ScrubReason(r).String()).Add(float64(c))
		}
	}
}
