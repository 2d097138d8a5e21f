// Package experiments is lift's configuration and the decisions made from it: the
// documents (experiments, flags, segments, saved groups, features, recommenders),
// their validation and lifecycle, the evaluation that gives a user a variant or a
// value, and the analysis of an experiment's results. It imports no driver: adapters
// implement its interfaces (pgstore keeps the documents, a Store; chstore computes
// the aggregates results need, an EventStore).
//
// # Documents
//
// Service holds the use cases of the management API and the dashboard (both call it
// through Manager): Create and Replace validate a document and check what it refers
// to, Transition starts, pauses and stops an experiment, Delete refuses while another
// document uses the one deleted, and segments keep every version, with a draft that
// runs in preview until PublishSegment. Every change is validated before it is
// stored and recorded in the audit log in the same transaction. An invalid document
// comes back as a *derrors.ValidationError naming every field at fault, so a client
// fixes them all in one round trip.
//
// # Decisions
//
// NewSnapshot compiles the configuration into an immutable Snapshot, and Live swaps
// in a new one whenever the configuration changes, so the decision path never
// blocks. Snapshot.Decide evaluates experiments and flags for one user: targeting
// conditions (segments/condition), behavioural segment memberships (MemberSet) and
// real-time features (FeatureSet), namespaces, and bucketing that follows
// GrowthBook's published algorithm (Hash, BucketRanges, ChooseVariation), so that lift
// and GrowthBook's SDKs put a user in the same variant (docs/api.md, "Bucketing and
// conditions"). Stick keeps a bandit's users on their arm while its weights change,
// and Impersonal is the snapshot for users who did not consent to personalisation.
//
// # Results
//
// ResultsService analyses an experiment from the per-variant aggregates an
// EventStore returns (overall, by segment or by day of first exposure, with the
// pre-exposure covariate CUPED uses), with the statistics of experiments/stats
// (docs/statistics.md).
package experiments
