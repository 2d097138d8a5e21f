package recommend_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/recommend"
	"github.com/liftlab/lift/internal/derrors"
)

type recentItems map[string][]any

func (r recentItems) FeatureValue(user, feature string) (any, bool) {
	v, ok := r[user]
	return v, ok && feature == (&experiments.Recommender{Key: "similar"}).FeatureKey()
}

// Models.Recommend: arms of an A/B test or a bandit choose the strategy or the
// recommender; errors for what does not exist; no model yet answers nothing.
func TestModelsRecommend(t *testing.T) {
	experiment := func(doc string) experiments.Experiment {
		var e experiments.Experiment
		if err := json.Unmarshal([]byte(doc), &e); err != nil {
			t.Fatal(err)
		}
		e.Normalize()
		return e
	}
	snap := experiments.NewSnapshot(&experiments.Config{
		Recommenders: []experiments.Recommender{{Key: "similar"}, {Key: "untrained"}},
		Experiments: []experiments.Experiment{
			experiment(`{"key":"bandit","type":"bandit","status":"running","variants":[{"key":"pop","value":"popular"},{"key":"cf","value":{"strategy":"similar"}}]}`),
			experiment(`{"key":"other","status":"running","variants":[{"key":"a","weight":1,"value":{"recommender":"untrained"}}]}`),
			experiment(`{"key":"broken","status":"running","variants":[{"key":"a","weight":1,"value":{"strategy":"random"}}]}`),
		},
		FeatureValues: recentItems{"u1": {"lamp"}},
	}, time.Now())
	models := recommend.NewModels(nil)
	models.Set("similar", smallShop())

	resp, err := models.Recommend(snap, recommend.Request{UserID: "u1", Recommender: "similar", N: 1})
	if err != nil || items(resp.Items)[0] != "shade" || resp.Strategy != recommend.StrategySimilar {
		t.Errorf("plain: %+v, %v", resp, err)
	}
	strategies := map[string]string{}
	for _, user := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"} {
		resp, err := models.Recommend(snap, recommend.Request{UserID: user, Recommender: "similar", Experiment: "bandit", N: 1})
		if err != nil || resp.Decision == nil || !resp.Decision.Assigned || resp.Decision.Reason != experiments.ReasonBandit {
			t.Fatalf("bandit arm: %+v, %v", resp, err)
		}
		strategies[resp.Decision.Variant] = resp.Strategy
	}
	if strategies["pop"] != recommend.StrategyPopular || strategies["cf"] != recommend.StrategySimilar {
		t.Errorf("strategies by arm: %v", strategies)
	}
	resp, err = models.Recommend(snap, recommend.Request{UserID: "u1", Recommender: "similar", Experiment: "other", N: 3})
	if err != nil || resp.Recommender != "untrained" || resp.ModelVersion != 0 || len(resp.Items) != 0 {
		t.Errorf("an arm naming an untrained recommender: %+v, %v", resp, err)
	}
	var ve *derrors.ValidationError
	if _, err := models.Recommend(snap, recommend.Request{UserID: "u1", Recommender: "similar", Experiment: "broken"}); !errors.As(err, &ve) {
		t.Errorf("broken arm: %v", err)
	}
	for _, req := range []recommend.Request{{UserID: "u1", Recommender: "nope"}, {UserID: "u1", Recommender: "similar", Experiment: "nope"}} {
		if _, err := models.Recommend(snap, req); !errors.Is(err, derrors.ErrNotFound) {
			t.Errorf("%+v: %v, want ErrNotFound", req, err)
		}
	}
}
