package ingest

// Consent is what a user agreed to, as clients send it with /v1/decide, /v1/events
// and OFREP, and as an event carries it through RabbitMQ. A field left out of a
// consent object is false: only what the user granted counts as granted.
type Consent struct {
	// Analytics: the user's events and exposures may be stored (ClickHouse).
	Analytics bool `json:"analytics"`
	// Personalization: the user may be put in experiments and behavioural
	// segments, which means their events feed the segment engine.
	Personalization bool `json:"personalization"`
}

// Purpose is a use of events that needs consent.
type Purpose uint8

// Purposes, combinable with |.
const (
	// ForAnalytics is storing events in ClickHouse.
	ForAnalytics Purpose = 1 << iota
	// ForPersonalization is feeding events to the behavioural segment engine.
	ForPersonalization
)

func (p Purpose) String() string {
	switch p {
	case ForAnalytics:
		return "analytics"
	case ForPersonalization:
		return "personalization"
	}
	return "analytics|personalization"
}

// Granted is the consent assumed when none is given and consent is not required.
var Granted = Consent{Analytics: true, Personalization: true}

// Allows reports whether the consent covers any of the purposes in p. A nil consent
// is Granted: events published without one (by backends, or from before consent
// existed) are used as they always were.
func (c *Consent) Allows(p Purpose) bool {
	if c == nil {
		return true
	}
	return p&ForAnalytics != 0 && c.Analytics || p&ForPersonalization != 0 && c.Personalization
}

// withConsent gives c to every event without a consent of its own.
func withConsent(events []Event, c *Consent) []Event {
	if c == nil {
		return events
	}
	shared := *c // events never change their consent, so they may share one
	for i := range events {
		if events[i].Consent == nil {
			events[i].Consent = &shared
		}
	}
	return events
}
