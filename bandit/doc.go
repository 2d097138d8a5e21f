// Package bandit computes the traffic weights of bandit experiments by Thompson
// sampling, and simulates policies to measure their regret. It is pure: counts come
// in, weights and posteriors go out; reading ClickHouse and publishing weights belong
// to the updater that calls it.
//
// # Posteriors
//
// Conversion goals use Beta–Bernoulli posteriors with a uniform Beta(1, 1) prior.
// Value goals (revenue per exposed user, zero for users who bought nothing) use the
// Normal model with unknown variance: a Normal–Inverse-Gamma posterior fed with the
// count, sum and sum of squares of the values, whose mean follows Student's t. Its
// default prior is one pseudo-observation at the pooled mean and variance of all arms,
// which is scale-free and favours no arm.
//
// # Weights
//
// Weights allocates traffic by probability matching: each arm's weight is its
// posterior probability of being the best arm, P(best), which is the allocation
// Thompson sampling makes in expectation but can be published as weights and served by
// hashing, so that a user stays on one arm while the weights are unchanged. P(best) is
// exact for two Beta arms (Evan Miller's closed form) and otherwise estimated by Monte
// Carlo with a seeded source (10,000 joint draws by default: standard error ≤ 0.005),
// so the same counts give the same weights. Weights stay equal during burn-in, until
// every arm has Config.BurnIn exposures (100 by default), and never fall below a floor
// of min(MinWeight, FloorScale/N) for N exposures in all, which decays so that its
// regret grows like ln N rather than linearly (see floor in weights.go).
//
// # Segments
//
// Each segment listed in an experiment's bandit.per_segment has its own posteriors,
// fed with the segment's counts only. A new or small segment would otherwise start
// blind and pay burn-in and exploration again, although what works overall is
// informative about what works in the segment. SegmentPriors therefore gives a
// segment, for each arm, a prior equal to the global posterior of that arm shrunk to at
// most ess pseudo-observations (DefaultSegmentESS = 100): the same mean, the spread of
// ess observations (a Beta's A+B is scaled to ess; a Normal–Inverse-Gamma's Kappa is
// capped at ess and its A at ess/2 with B/A kept). This is a power prior, the discrete
// analogue of partial pooling in a hierarchical model: with no data the segment
// follows the global ranking, each of its own observations weighs as much as a prior
// pseudo-observation, and after a few times ess exposures per arm its own data decide,
// so a segment whose best arm differs from the global one still converges to its own.
// The global counts may include the segment's users; ess caps how much that double
// counting can matter.
//
// # Discounting
//
// For content whose appeal drifts, Discounted combines counts kept per period with a
// sliding window of periods and/or an exponential decay factor per period, before
// they reach Weights. The updater does this with days of first exposure as periods
// when an experiment sets bandit.window (Spec.WindowDays) or bandit.decay
// (Spec.Decay): a user counts, with their conversions, on the day they were first
// exposed, so a window of 7 days learns from the users of the last 7 days only.
//
// # Simulation
//
// Simulate measures the cumulative expected regret Σ (μ* − μ_chosen) of Thompson
// sampling, UCB1, ε-greedy, a uniform split and the policy lift serves (users hashed
// into weights published every Batch rounds, with the default configuration) on
// Bernoulli arms, alongside the Lai–Robbins lower bound.
package bandit
