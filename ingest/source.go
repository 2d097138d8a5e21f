package ingest

// Source is where an event entered lift. It is set by lift, never read from the
// event: the collector knows which kind of key authenticated the request, and the
// consumer knows whether a message came from the collector or from a backend
// publishing to RabbitMQ. It is stored with the event (ClickHouse events.source), and
// decides whether the identity link of a $identify event is trusted: export and
// erasure follow only trusted links (docs/privacy.md, "Linked ids").
type Source string

// Sources.
const (
	// SourceUnknown: stored before lift recorded sources; such links could have been
	// sent with a client key, so they are not trusted.
	SourceUnknown Source = "unknown"
	// SourceClient: the collector, with a client key. Client keys are public (every
	// page that loads lift.js holds one): anyone can send anything with them.
	SourceClient Source = "client"
	// SourceServer: the collector, with a server key.
	SourceServer Source = "server"
	// SourceAMQP: published to lift.events by a backend holding broker credentials.
	SourceAMQP Source = "amqp"
)

// Trusted reports whether events from s may link identities: only what lift's
// operators control (server keys, the broker) may.
func (s Source) Trusted() bool { return s == SourceServer || s == SourceAMQP }

// ParseSource maps a recorded source back; anything unexpected is SourceUnknown,
// which is not trusted.
func ParseSource(s string) Source {
	switch src := Source(s); src {
	case SourceClient, SourceServer, SourceAMQP:
		return src
	}
	return SourceUnknown
}
