package retailsim

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/liftlab/lift/web/client"
)

// The simulated shop: the demo's catalog, walked with the default tastes.
var (
	catalog = RetailCatalog()
	tastes  = DefaultTastes
)

func (r *Recommendations) wait() time.Duration {
	if d, err := time.ParseDuration(r.Wait); err == nil {
		return d
	}
	return time.Second
}

// recsShown is what a visitor's recommendation block showed, and what each arm would
// have shown.
type recsShown struct {
	variant string             // the experiment's arm ("" if the visitor is not in it)
	id      string             // recommendation_id
	appeal  map[string]float64 // arm → appeal of its list to this visitor
	best    int                // the most appealing product shown, -1 if none
	// The $exposure and $recommendation events' properties, sent when shown.
	exposure, impression map[string]any
}

// recommend asks lift for the visitor's block, and for what every other arm would
// have shown (track false, so only the block shown is logged, by the visitor).
func (r *run) recommend(ctx context.Context, recs *Recommendations, user string, attrs map[string]any, s Shopper, viewed []int) (*recsShown, error) {
	no := false
	served, err := r.o.Client.Recommend(ctx, client.RecommendRequest{UserID: user, Recommender: recs.Recommender,
		Experiment: recs.Experiment, Attributes: attrs, N: recs.Slots, Track: &no})
	if err != nil {
		return nil, fmt.Errorf("recommend: %w", err)
	}
	out := &recsShown{variant: served.Variant, id: served.RecommendationID, appeal: map[string]float64{}, best: -1,
		exposure: served.Exposure, impression: served.Impression}
	for variant, strategy := range recs.Arms {
		list := served.SKUs()
		if variant != served.Variant {
			other, err := r.o.Client.Recommend(ctx, client.RecommendRequest{UserID: user, Recommender: recs.Recommender,
				Strategy: strategy, Attributes: attrs, N: recs.Slots, Track: &no})
			if err != nil {
				return nil, fmt.Errorf("recommend (arm %s): %w", variant, err)
			}
			list = other.SKUs()
		}
		out.appeal[variant] = catalog.ListAppeal(tastes, s, viewed, list, recs.Slots)
	}
	for _, sku := range served.SKUs() {
		if i := catalog.Index(sku); i >= 0 && (out.best < 0 || catalog.Appeal(tastes, s, viewed, i) > catalog.Appeal(tastes, s, viewed, out.best)) {
			out.best = i
		}
	}
	return out, nil
}

// Train asks lift to train the recommender and waits, up to limit, until its newest
// model has learnt from at least users users (the events of a warm-up take a moment
// to reach ClickHouse, so it asks again while the model knows fewer).
func Train(ctx context.Context, api API, recommender string, users int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	path := "/api/v1/recommenders/" + url.PathEscape(recommender)
	for {
		if err := api.post(ctx, path+"/train"); err != nil {
			return err
		}
		for wait := time.Now().Add(10 * time.Second); time.Now().Before(wait); {
			var models struct {
				Items []struct {
					Stats struct {
						Users int `json:"users"`
					} `json:"stats"`
				} `json:"items"`
				Requested *time.Time `json:"training_requested_at"`
			}
			if err := api.get(ctx, path+"/models", &models); err != nil {
				return err
			}
			if models.Requested == nil && len(models.Items) > 0 {
				if models.Items[0].Stats.Users >= users {
					return nil
				}
				break // trained on less: ask again
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("recommender %s: no model trained on %d users within %v", recommender, users, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}
