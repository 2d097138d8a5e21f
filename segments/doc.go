// Package segments is lift's behavioural segment engine: rules over a user's recent
// events ("3 product_view within 10 minutes", "added to cart and no purchase for 30
// minutes") and real-time user features ("product views in the last 10 minutes"),
// evaluated per user in event time, with every membership change reported as it
// happens (docs/segments.md). It imports only the standard library and
// segments/condition.
//
// # Rules and features
//
// ParseRuleJSON compiles the rule language (a count or a sum of events within a
// window, a sequence of events with an optional absent one, and/or of rules), and
// ParseFeatureJSON a feature (count, sum, distinct, last, last_n over a window).
// Their where clauses are conditions of segments/condition on the event's properties.
// Every error names the offending path the way the client wrote it (*RuleError,
// *FeatureError).
//
// # The engine
//
// An Engine is single-threaded and owns the users of one shard (Shard spreads users
// with a jump consistent hash): Process feeds it events, Tick moves time on along the
// wall clock when the input is idle, and OnChange receives every Enter and Exit as it
// happens. Time is event time: the watermark (the newest event time less the
// lateness) decides which events are late and when timers fire (a window ends, a TTL
// runs out), so an exit waits until no late event can prevent it.
//
// # State
//
// Per user the engine keeps only the events its rules can still read, and forgets
// users with nothing left. Snapshot and Restore write and read checkpoints, and match
// their state to the definitions by content (a hash of rule and TTL) rather than by
// key, so that editing one segment rebuilds that one only; StartRebuild and Merge
// rebuild it from stored events without counting an event twice.
//
// The adapters are beside it: segments/amqprunner runs shards on RabbitMQ streams,
// segments/pgstore keeps memberships, checkpoints and webhooks, segments/chsink
// records changes in ClickHouse, and segments/webhooks delivers them over HTTP.
package segments
