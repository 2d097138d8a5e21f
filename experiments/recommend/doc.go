// Package recommend trains and serves item-to-item recommenders from implicit
// feedback: which items users viewed, put in their cart or bought. It is pure Go
// without drivers: interactions come in, a Model goes out; reading ClickHouse and
// storing models belong to the adapters (recommend/chstore, recommend/pgstore) and
// to the Trainer that calls them. docs/recommendations.md describes it for users.
//
// # Model
//
// Each user's events become one weight per item: the sum, over the user's events of
// that item, of the event type's weight (a purchase says more than a view) halved for
// every half-life of age. The weights are damped (log(1 + w)), so that a hundred
// views of one item do not outweigh a purchase of another, and each user counts with
// 1/log2(2 + n) for n items (inverse user frequency: a user who touched everything
// says little about what goes together), over at most MaxItemsPerUser items.
//
// The similarity of items i and j is the cosine of their weight vectors over users,
// shrunk by the support s (the users who have both) as s/(s + Shrink):
//
//	sim(i, j) = Σ_u f_u·w_ui·w_uj / sqrt(Σ_u f_u·w_ui² · Σ_u f_u·w_uj²) · s/(s + Shrink)
//
// Dividing by both norms is what keeps universally popular items from dominating:
// an item everyone views co-occurs with everything, but its norm grows with it, so
// its cosine with any one item stays small unless the two really go together; the
// shrinkage keeps pairs seen together by one or two users from ranking first on
// noise. The model keeps the Neighbours most similar items of every item, and the
// items most popular over the last day (the fallback).
//
// # Serving
//
// A user's recommendations are scored from the items they touched most recently,
// newest first (a feature the segment engine keeps up to date, so a view a second
// old counts): score(j) = Σ_r Decay^r · sim(recent_r, j) over the MaxScored newest.
// The recent items
// themselves and the request's exclusions are left out; if fewer than n items score,
// the popular ones fill the list.
package recommend
