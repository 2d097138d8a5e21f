package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// RecommendRequest asks for recommendations (POST /v1/recommend,
// docs/recommendations.md). Track false leaves logging the impression (and an
// experiment's exposure) to the caller, when it shows the items.
type RecommendRequest struct {
	UserID      string         `json:"user_id"`
	Recommender string         `json:"recommender,omitempty"`
	Experiment  string         `json:"experiment,omitempty"`
	Strategy    string         `json:"strategy,omitempty"`
	Attributes  map[string]any `json:"attributes,omitempty"`
	N           int            `json:"n,omitempty"`
	Exclude     []string       `json:"exclude,omitempty"`
	Track       *bool          `json:"track,omitempty"`
}

// Recommended is one recommended item.
type Recommended struct {
	Item   string  `json:"item"`
	Score  float64 `json:"score"`
	Source string  `json:"source"` // similar or popular
}

// Recommendations is the answer of /v1/recommend.
type Recommendations struct {
	UserID           string        `json:"user_id"`
	Recommender      string        `json:"recommender"`
	Items            []Recommended `json:"items"`
	ModelVersion     int64         `json:"model_version"`
	Strategy         string        `json:"strategy"`
	RecommendationID string        `json:"recommendation_id"`
	Experiment       string        `json:"experiment,omitempty"`
	Variant          string        `json:"variant,omitempty"`
	// Impression, with Track false, is the $recommendation event's properties to
	// send when the items are shown.
	Impression map[string]any `json:"impression,omitempty"`
	// Exposure, with Track false and an experiment's assigned user, is the
	// $exposure event's properties to send when the items are shown.
	Exposure map[string]any `json:"exposure,omitempty"`
}

// SKUs returns the recommended items' ids in order.
func (r Recommendations) SKUs() []string {
	out := make([]string, len(r.Items))
	for i, it := range r.Items {
		out[i] = it.Item
	}
	return out
}

// Recommend asks lift for recommendations. Answers are not cached: they follow the
// user's latest events.
func (c *Client) Recommend(ctx context.Context, r RecommendRequest) (Recommendations, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return Recommendations{}, fmt.Errorf("lift client: encode recommend request: %w", err)
	}
	resp, err := c.post(ctx, "/v1/recommend", body)
	if err != nil {
		return Recommendations{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Recommendations{}, httpError(resp)
	}
	var out Recommendations
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return Recommendations{}, fmt.Errorf("lift client: decode recommend answer: %w", err)
	}
	return out, nil
}
