// Package ingest is lift's event model: the event types, how an event is parsed and
// validated (the same rules for the HTTP collector and for messages published straight
// to RabbitMQ), and the interfaces the collector, the consumers and the storage
// adapters meet at. Adapters live in ingest/amqpbus (RabbitMQ) and ingest/chsink
// (ClickHouse).
package ingest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/liftlab/lift/internal/derrors"
)

// Built-in event types. $exposure is logged by /v1/decide and stored in the exposures
// table; every other type is stored in the events table.
const (
	TypePageView       = "page_view"
	TypeProductView    = "product_view"
	TypeClick          = "click"
	TypeAddToCart      = "add_to_cart"
	TypeRemoveFromCart = "remove_from_cart"
	TypePurchase       = "purchase"
	TypeExposure       = "$exposure"
	// TypeIdentify links an anonymous id (properties.anonymous_id) to the logged-in
	// user_id; the browser SDK sends it when a visitor signs in (docs/sdk.md).
	TypeIdentify = "$identify"
	// TypeRecommendation records the items /v1/recommend showed a user
	// (docs/recommendations.md); it is stored in the events table.
	TypeRecommendation = "$recommendation"
)

var builtinTypes = map[string]bool{
	TypePageView: true, TypeProductView: true, TypeClick: true, TypeAddToCart: true,
	TypeRemoveFromCart: true, TypePurchase: true, TypeExposure: true, TypeIdentify: true,
	TypeRecommendation: true,
}

// Limits that keep one event within what the storage columns, the statistics and the
// consumers' memory budget expect (documented in docs/sdk.md).
const (
	MaxUserIDLen     = 256
	MaxPropertiesLen = 32 << 10
	// MaxAge and MaxSkew bound event time against receive time: older events would
	// land in partitions analysts consider closed, and far-future ones are clock bugs.
	// MaxSkew also bounds a received_at against the clock of the server reading it.
	MaxAge  = 7 * 24 * time.Hour
	MaxSkew = 5 * time.Minute
	// MaxBacklog is how long before a consumer's clock a received_at may be: how long
	// a message may wait in the broker (a consumer down for a month) and still be
	// stored; older ones are dead-lettered with the reason.
	MaxBacklog = 30 * 24 * time.Hour
	// MaxValue bounds |value|. Every value up to it keeps cent precision (10^14 cents
	// is below 2^53, where float64 stops counting integers exactly), and the sums of
	// squares the statistics keep stay finite for any number of events (a billion of
	// them sum to 10^33, float64 overflows at 1.8·10^308).
	MaxValue = 1e12
)

// MinTime and MaxTime are the times storage holds: ClickHouse's DateTime is seconds
// since the epoch in a UInt32, and a time outside would wrap into another year.
var (
	MinTime = time.Unix(0, 0).UTC()
	MaxTime = time.Unix(math.MaxUint32, 0).UTC() // 2106-02-07T06:28:15Z
)

// Event is one accepted event, as published to RabbitMQ and stored in ClickHouse.
type Event struct {
	ID         uuid.UUID       `json:"event_id"`
	Type       string          `json:"type"`
	UserID     string          `json:"user_id"`
	Timestamp  time.Time       `json:"timestamp"`
	ReceivedAt time.Time       `json:"received_at"`
	Value      float64         `json:"value"`
	Properties json.RawMessage `json:"properties,omitempty"`
	// Consent is what the user agreed to; nil means everything (see Consent.Allows).
	Consent *Consent `json:"consent,omitempty"`
	// Exposure is set for $exposure events, decoded from Properties.
	Exposure *Exposure `json:"-"`
	// Source is where the event entered lift, set by the collector or the consumer
	// (never parsed from the event, so a client cannot claim another).
	Source Source `json:"-"`
}

// Exposure is the payload of a $exposure event: which variant of which experiment a
// user was assigned.
type Exposure struct {
	Experiment            string  `json:"experiment"`
	Variant               string  `json:"variant"`
	Segment               string  `json:"segment,omitempty"`
	AssignmentProbability float64 `json:"assignment_probability"`
}

// fields are the members of one event object as validate reads them: strings the
// validation parses stay bytes, so the scanner (scan.go) passes slices of the input
// and allocates nothing for them. A nil *fields is a JSON null.
type fields struct {
	has                            int // optional members present: fEventID, fTimestamp, fReceivedAt, fValue
	eventID, timestamp, receivedAt []byte
	typ, userID                    string
	value                          float64
	properties                     []byte
	compact                        bool // properties has no whitespace to remove
	consent                        *Consent
}

// wireEvent is an event as encoding/json decodes it (for JSON the scanner leaves
// alone): optional members are pointers so that "absent" and "zero" differ.
type wireEvent struct {
	EventID    *string         `json:"event_id"`
	Type       string          `json:"type"`
	UserID     string          `json:"user_id"`
	Timestamp  *string         `json:"timestamp"`
	ReceivedAt *string         `json:"received_at"`
	Value      *float64        `json:"value"`
	Properties json.RawMessage `json:"properties"`
	Consent    *Consent        `json:"consent"`
}

func (w *wireEvent) fields() *fields {
	f := &fields{typ: w.Type, userID: w.UserID, properties: w.Properties, consent: w.Consent}
	opt := func(bit int, s *string) []byte {
		if s == nil {
			return nil
		}
		f.has |= bit
		return []byte(*s)
	}
	f.eventID = opt(fEventID, w.EventID)
	f.timestamp = opt(fTimestamp, w.Timestamp)
	f.receivedAt = opt(fReceivedAt, w.ReceivedAt)
	if w.Value != nil {
		f.has |= fValue
		f.value = *w.Value
	}
	return f
}

// Defaults supplies what an event may omit, and says whose clock to believe.
type Defaults struct {
	// ReceivedAt is the receive time by the server's clock: the default timestamp
	// and the reference for the age and skew limits.
	ReceivedAt time.Time
	// Now is the server's clock, which bounds a received_at; zero: ReceivedAt.
	Now time.Time
	// TrustReceivedAt lets an event carry its own received_at (within MaxBacklog
	// before and MaxSkew after Now), which then replaces ReceivedAt. Only a
	// consumer behind the broker sets it: what reaches lift.events was published by
	// the collector, which stamps its own clock, or by a backend holding broker
	// credentials, and a backlog must not be rejected for having waited. The
	// collector leaves it false, and an event that sends received_at is rejected:
	// a client choosing its receive time would choose what the limits measure.
	TrustReceivedAt bool
	// NewID makes the event_id of an event without one.
	NewID func() uuid.UUID
	// Types holds the custom event types; nil allows the built-in ones only.
	Types Types
}

// ParseEvent decodes and validates one event. It returns a *derrors.ValidationError naming
// every invalid field ("(event)" when raw is not a JSON object), or derrors.ErrMalformed when
// raw is not JSON.
func ParseEvent(raw []byte, d Defaults) (Event, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return Event{}, derrors.Invalid("(event)", "must be a JSON object")
	}
	var w wireEvent
	if err := json.Unmarshal(raw, &w); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			v := &derrors.ValidationError{}
			if typeErr.Field == "value" && strings.HasPrefix(typeErr.Value, "number") {
				// A number float64 cannot hold, such as 1e309.
				v.Add("value", "must be a finite number between -1e12 and 1e12")
			} else {
				v.Add(typeErr.Field, "must be %s", expectedOf(typeErr.Field))
			}
			return Event{}, v
		}
		return Event{}, derrors.ErrMalformed
	}
	return validate(w.fields(), d)
}

// eventFieldTypes says what each member of an event must be, so that a type error
// names what is expected ("user_id: must be a string") rather than what was sent.
var eventFieldTypes = map[string]string{
	"event_id":                "a string (a UUID)",
	"type":                    "a string",
	"user_id":                 "a string",
	"timestamp":               "an RFC 3339 string such as 2026-01-02T15:04:05Z",
	"received_at":             "an RFC 3339 string",
	"value":                   "a number",
	"properties":              "an object",
	"consent":                 `an object such as {"analytics":true,"personalization":true}`,
	"consent.analytics":       "true or false",
	"consent.personalization": "true or false",
}

func expectedOf(field string) string {
	if want, ok := eventFieldTypes[field]; ok {
		return want
	}
	return "of another JSON type"
}

// parseTime parses an RFC 3339 time as time.Parse(time.RFC3339Nano) does, but from
// bytes without copying them (time.Time's UnmarshalText; FuzzParseTime checks that
// the two agree).
func parseTime(b []byte) (time.Time, error) {
	var t time.Time
	err := t.UnmarshalText(b)
	return t, err
}

// checkTimes returns an event's receive time and timestamp, recording in v why either
// is refused: every accepted time lies within what storage holds, the receive time
// within MaxBacklog before and MaxSkew after the server's (and only a trusted input
// may move it), and the timestamp within MaxAge before and MaxSkew after the receive
// time. FuzzCheckTimes holds it to that.
func checkTimes(w *fields, d Defaults, v *derrors.ValidationError) (received, ts time.Time) {
	received = d.ReceivedAt.UTC()
	now := received
	if !d.Now.IsZero() {
		now = d.Now.UTC()
	}
	if w.has&fReceivedAt != 0 {
		t, err := parseTime(w.receivedAt)
		switch {
		case !d.TrustReceivedAt:
			v.Add("received_at", "is set by lift when it receives the event; leave it out")
		case err != nil:
			v.Add("received_at", "must be an RFC 3339 time")
		case t.Before(now.Add(-MaxBacklog)):
			v.Add("received_at", "is more than 30 days before the server's clock")
		case t.After(now.Add(MaxSkew)):
			v.Add("received_at", "is more than 5 minutes after the server's clock")
		default:
			received = t.UTC()
		}
	}
	if !inStorage(received) {
		// Only a server clock outside 1970–2106 gets here; storing would wrap.
		v.Add("received_at", "must be between %s and %s", MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339))
	}
	ts = received
	if w.has&fTimestamp != 0 {
		t, err := parseTime(w.timestamp)
		switch {
		case err != nil:
			v.Add("timestamp", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
		case t.Before(received.Add(-MaxAge)):
			v.Add("timestamp", "is more than 7 days before the receive time")
		case t.After(received.Add(MaxSkew)):
			v.Add("timestamp", "is more than 5 minutes after the receive time")
		case !inStorage(t):
			v.Add("timestamp", "must be between %s and %s", MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339))
		default:
			ts = t.UTC()
		}
	}
	return received, ts
}

// inStorage reports whether ClickHouse's DateTime holds t.
func inStorage(t time.Time) bool {
	return !t.Before(MinTime) && !t.After(MaxTime)
}

// validate applies the rules to a decoded event.
func validate(w *fields, d Defaults) (Event, error) {
	if w == nil { // a JSON null in a batch
		return Event{}, derrors.Invalid("(event)", "must be a JSON object")
	}
	e := Event{Type: w.typ, UserID: w.userID, Consent: w.consent}
	// Kept on the stack for the usual valid event; copied out only on failure.
	var ve derrors.ValidationError
	v := &ve

	if w.has&fEventID != 0 {
		id, err := uuid.ParseBytes(w.eventID)
		if err != nil || len(w.eventID) != 36 {
			v.Add("event_id", "must be a UUID such as 0190b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b")
		}
		e.ID = id
	} else {
		e.ID = d.NewID()
	}

	var custom PropertiesValidator
	switch {
	case e.Type == "":
		v.Add("type", "is required")
	case builtinTypes[e.Type]:
	case d.Types != nil:
		var ok bool
		if custom, ok = d.Types.Lookup(e.Type); !ok {
			v.Add("type", "unknown event type %q", truncate(e.Type))
		}
	default:
		v.Add("type", "unknown event type %q", truncate(e.Type))
	}
	switch {
	case e.UserID == "":
		v.Add("user_id", "is required")
	case len(e.UserID) > MaxUserIDLen:
		v.Add("user_id", "must be at most %d bytes", MaxUserIDLen)
	}

	e.ReceivedAt, e.Timestamp = checkTimes(w, d, v)

	if w.has&fValue != 0 {
		e.Value = w.value
		if !(math.Abs(e.Value) <= MaxValue) { // also NaN
			v.Add("value", "must be a finite number between -1e12 and 1e12")
		}
	}
	if e.Type == TypePurchase {
		switch {
		case w.has&fValue == 0:
			v.Add("value", "is required for purchase events")
		case e.Value < 0:
			v.Add("value", "must be ≥ 0 for purchase events")
		}
	}

	if len(w.properties) > 0 && !bytes.Equal(w.properties, []byte("null")) {
		var buf bytes.Buffer
		switch {
		case w.properties[0] != '{':
			v.Add("properties", "must be a JSON object")
		case len(w.properties) > MaxPropertiesLen:
			v.Add("properties", "must be at most %d bytes of JSON", MaxPropertiesLen)
		case w.compact:
			e.Properties = w.properties
		case json.Compact(&buf, w.properties) != nil:
			v.Add("properties", "must be a JSON object")
		default:
			e.Properties = buf.Bytes()
		}
	}
	if e.Type == TypeExposure {
		e.Exposure = parseExposure(e.Properties, v)
	}
	if custom != nil && len(v.Fields) == 0 {
		props := e.Properties
		if len(props) == 0 {
			props = json.RawMessage("{}")
		}
		if err := custom.ValidateProperties(props); err != nil {
			v.Add("properties", "%s", err.Error())
		}
	}
	if len(v.Fields) > 0 {
		return Event{}, &derrors.ValidationError{Fields: v.Fields}
	}
	return e, nil
}

func parseExposure(props json.RawMessage, v *derrors.ValidationError) *Exposure {
	var x struct {
		Experiment            *string  `json:"experiment"`
		Variant               *string  `json:"variant"`
		Segment               *string  `json:"segment"`
		AssignmentProbability *float64 `json:"assignment_probability"`
	}
	if len(props) == 0 || json.Unmarshal(props, &x) != nil {
		v.Add("properties", "must be an object with experiment, variant and assignment_probability for $exposure")
		return nil
	}
	out := &Exposure{}
	if x.Experiment == nil || *x.Experiment == "" {
		v.Add("properties.experiment", "is required for $exposure")
	} else {
		out.Experiment = *x.Experiment
	}
	if x.Variant == nil || *x.Variant == "" {
		v.Add("properties.variant", "is required for $exposure")
	} else {
		out.Variant = *x.Variant
	}
	if x.Segment != nil {
		out.Segment = *x.Segment
	}
	switch p := x.AssignmentProbability; {
	case p == nil:
		v.Add("properties.assignment_probability", "is required for $exposure")
	case !(*p >= 0 && *p <= 1):
		v.Add("properties.assignment_probability", "must be between 0 and 1")
	default:
		out.AssignmentProbability = *p
	}
	return out
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Rejection is an event the collector refused, by its index in the request.
type Rejection struct {
	Index int    `json:"index"`
	Error string `json:"error"`
	// Reason is the metrics label: the first invalid field.
	Reason string `json:"-"`
}

// noEvents explains the collector's body to a client that sent something else.
const noEvents = `is required: send {"events":[{"type":"purchase","user_id":"u1","value":12.5}]}, or one event object with a "type"`

// envelopeError says what is wrong with a collector body that is JSON but not of its
// shape (a derrors.BadRequest: the request is wrong, not one of its events);
// derrors.ErrMalformed when it is not JSON at all.
func envelopeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	switch {
	case !errors.As(err, &typeErr):
		return derrors.ErrMalformed
	case typeErr.Field == "":
		return derrors.BadRequest("(body)", `must be a JSON object: {"events":[...]} or one event`)
	case typeErr.Field == "events":
		return derrors.BadRequest("events", "must be an array of event objects")
	}
	return derrors.BadRequest(typeErr.Field, "must be "+expectedOf(typeErr.Field))
}

// ParseRequest parses a collector body {"events":[...],"consent":{...}}, or one event
// object on its own (a body with "type" and no "events"): every valid event, and a
// rejection naming the index and field of every invalid one. The request's consent,
// if any, is given to each event without its own. It returns derrors.ErrMalformed when
// the body is not JSON, and a derrors.BadRequest naming the envelope's problem
// ("events" missing, not an array) when it is JSON of another shape.
func ParseRequest(body []byte, d Defaults) ([]Event, []Rejection, error) {
	// The scanner decodes the usual batch in one pass; it leaves unusual JSON to
	// encoding/json, one event at a time, which also names the index of an event of
	// the wrong shape.
	if all, consent, ok := scanRequest(body); ok {
		events := make([]Event, 0, len(all))
		var rejected []Rejection
		for i, w := range all {
			e, err := validate(w, d)
			if err != nil {
				rejected = append(rejected, Rejection{Index: i, Error: err.Error(), Reason: reasonOf(err)})
				continue
			}
			events = append(events, e)
		}
		return withConsent(events, consent), rejected, nil
	}
	var req struct {
		Events  []json.RawMessage `json:"events"`
		Consent *Consent          `json:"consent"`
		Type    json.RawMessage   `json:"type"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, nil, envelopeError(err)
	}
	if req.Events == nil {
		if req.Type == nil {
			return nil, nil, derrors.BadRequest("events", noEvents)
		}
		// One event object without the {"events":[...]} around it.
		e, err := ParseEvent(body, d)
		if err != nil {
			return nil, []Rejection{{Index: 0, Error: err.Error(), Reason: reasonOf(err)}}, nil
		}
		return []Event{e}, nil, nil
	}
	events := make([]Event, 0, len(req.Events))
	var rejected []Rejection
	for i, raw := range req.Events {
		e, err := ParseEvent(raw, d)
		if err != nil {
			rejected = append(rejected, Rejection{Index: i, Error: err.Error(), Reason: reasonOf(err)})
			continue
		}
		events = append(events, e)
	}
	return withConsent(events, req.Consent), rejected, nil
}

// Invalid is one event of a message that cannot be stored, with why.
type Invalid struct {
	Raw    json.RawMessage
	Reason string
}

// messageNamespace seeds the ids of events published to RabbitMQ without an event_id.
var messageNamespace = uuid.MustParse("6f1c1e0a-3b0e-4c55-9a57-5c1f4f6d2b71")

// ParseMessage parses an AMQP message body: one event object or an array of them, as
// any backend may publish to lift.events. An event without event_id gets one derived
// from the body and its position, so a redelivered message yields the same ids and
// storage dedups it. Messages come from behind the broker, so an event's received_at
// is honoured, within MaxBacklog before and MaxSkew after now, the consumer's clock.
// An event without one was received when the message was published (published, its
// timestamp property) if that lies within the same bounds, else now. types holds the
// custom event types (nil: built-in types only). A body that is not JSON comes back
// as one Invalid.
func ParseMessage(body []byte, now, published time.Time, types Types) ([]Event, []Invalid) {
	var index int
	d := messageDefaults(body, &index, now, types)
	if !published.Before(now.Add(-MaxBacklog)) && !published.After(now.Add(MaxSkew)) {
		d.ReceivedAt = published
	}
	d.Now = now
	if all, spans, ok := scanMessage(body); ok {
		events := make([]Event, 0, len(all))
		var invalid []Invalid
		for i, w := range all {
			index = i
			e, err := validate(w, d)
			if err != nil {
				invalid = append(invalid, Invalid{Raw: body[spans[i].start:spans[i].end], Reason: err.Error()})
				continue
			}
			events = append(events, e)
		}
		return events, invalid
	}
	// The scanner leaves unusual JSON to encoding/json, one event at a time.
	trimmed := bytes.TrimSpace(body)
	var raws []json.RawMessage
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, []Invalid{{Raw: body, Reason: "malformed JSON: " + err.Error()}}
		}
	} else {
		raws = []json.RawMessage{trimmed}
	}
	var (
		events  = make([]Event, 0, len(raws))
		invalid []Invalid
	)
	for i, raw := range raws {
		index = i
		e, err := ParseEvent(raw, d)
		if err != nil {
			invalid = append(invalid, Invalid{Raw: raw, Reason: err.Error()})
			continue
		}
		events = append(events, e)
	}
	return events, invalid
}

// messageDefaults derives the id of an event from the message and the event's index,
// which the caller sets in *i before validating each event.
func messageDefaults(body []byte, i *int, received time.Time, types Types) Defaults {
	return Defaults{ReceivedAt: received, TrustReceivedAt: true, Types: types, NewID: func() uuid.UUID {
		seed := binary.BigEndian.AppendUint32(bytes.Clone(body), uint32(*i))
		return uuid.NewSHA1(messageNamespace, seed)
	}}
}

// NewID makes a time-ordered UUIDv7, the default event_id.
func NewID() uuid.UUID {
	// NewV7 fails only when the system's random source does.
	return uuid.Must(uuid.NewV7())
}
