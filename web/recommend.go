package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/recommend"
	"github.com/liftlab/lift/ingest"
)

// Recommender answers /v1/recommend (recommend.Models).
type Recommender interface {
	Recommend(snap *experiments.Snapshot, req recommend.Request) (recommend.Response, error)
}

// ImpressionLogger records the items /v1/recommend served; Log must not block.
type ImpressionLogger interface {
	Log(userID string, im recommend.Impression)
}

// RecommenderModels is the management API's view of trained models.
type RecommenderModels interface {
	RequestTraining(ctx context.Context, recommender, actor string) (time.Time, error)
	Versions(ctx context.Context, recommender string) ([]recommend.ModelInfo, time.Time, error)
}

// RecommendRequest is the body of POST /v1/recommend.
type RecommendRequest struct {
	UserID      string `json:"user_id"`
	Recommender string `json:"recommender"`
	// Experiment names an experiment or bandit whose variant values choose the
	// recommender or strategy (docs/recommendations.md); its exposure is logged.
	Experiment string `json:"experiment"`
	// Strategy forces "similar" or "popular" (what an experiment's arm would
	// choose), e.g. to see what the other arm would have shown.
	Strategy   string         `json:"strategy"`
	Attributes map[string]any `json:"attributes"`
	N          *int           `json:"n"`
	Exclude    []string       `json:"exclude"`
	// Track false: neither the impression nor an experiment's exposure is logged
	// (the client logs them when it renders the items).
	Track   *bool           `json:"track"`
	Consent *ingest.Consent `json:"consent"`
}

// Bounds of a recommend request.
const (
	DefaultRecommendN = 10
	MaxRecommendN     = 100
	maxExclude        = 1000
)

// ParseRecommendRequest decodes and checks a recommend body. Errors name the field.
func ParseRecommendRequest(body []byte) (RecommendRequest, error) {
	var r RecommendRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return r, decodeRequestError(err, nil, `{"user_id":"u1","recommender":"similar"}`)
	}
	switch {
	case r.UserID == "":
		return r, badRequest("user_id", "is required")
	case len(r.UserID) > maxUserIDLen:
		return r, badRequest("user_id", "must be at most 256 bytes")
	case r.Recommender == "" && r.Experiment == "":
		return r, badRequest("recommender", "is required (or an experiment whose variants name one)")
	case r.N != nil && (*r.N < 1 || *r.N > MaxRecommendN):
		return r, badRequest("n", "must be from 1 to "+strconv.Itoa(MaxRecommendN))
	case len(r.Exclude) > maxExclude:
		return r, badRequest("exclude", "must list at most "+strconv.Itoa(maxExclude)+" items")
	case r.Strategy != "" && r.Strategy != recommend.StrategySimilar && r.Strategy != recommend.StrategyPopular:
		return r, badRequest("strategy", "must be \"similar\" or \"popular\"")
	}
	return r, nil
}

// recommendResponse is the answer of POST /v1/recommend.
type recommendResponse struct {
	UserID           string             `json:"user_id"`
	Recommender      string             `json:"recommender"`
	Items            []recommend.Scored `json:"items"`
	ModelVersion     int64              `json:"model_version"`
	Strategy         string             `json:"strategy"`
	RecommendationID string             `json:"recommendation_id"`
	Experiment       string             `json:"experiment,omitempty"`
	Variant          string             `json:"variant,omitempty"`
	// Impression is what a client that logs its own impressions ("track": false)
	// sends as the properties of a $recommendation event when it renders the items,
	// and Exposure, for an experiment's assigned user, those of its $exposure.
	Impression *recommend.Impression `json:"impression,omitempty"`
	Exposure   *ingest.Exposure      `json:"exposure,omitempty"`
}

// recommend serves POST /v1/recommend: items for a user from a recommender, scored
// from the user's recent items (docs/recommendations.md).
func (s *server) recommend(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	req, err := ParseRecommendRequest(body)
	if err != nil {
		return err
	}
	consent := s.Privacy.Consent(req.Consent)
	userID := s.Privacy.UserID(req.UserID)
	snap := s.Snapshots.Snapshot()
	if !consent.Personalization {
		snap = snap.Impersonal() // popular items only, no experiment
	}
	n := DefaultRecommendN
	if req.N != nil {
		n = *req.N
	}
	resp, err := s.Recommendations.Recommend(snap, recommend.Request{UserID: userID, Recommender: req.Recommender,
		Experiment: req.Experiment, Strategy: req.Strategy, Attributes: req.Attributes, N: n, Exclude: req.Exclude})
	if err != nil {
		return err
	}
	out := recommendResponse{UserID: req.UserID, Recommender: resp.Recommender, Items: resp.Items,
		ModelVersion: resp.ModelVersion, Strategy: resp.Strategy, RecommendationID: ingest.NewID().String()}
	if d := resp.Decision; d != nil {
		out.Experiment, out.Variant = d.Key, d.Variant
	}
	im := resp.Impression(out.RecommendationID, time.Now())
	track := req.Track == nil || *req.Track
	switch {
	case !track:
		out.Impression = &im
		if d := resp.Decision; d != nil && d.Assigned {
			out.Exposure = &ingest.Exposure{Experiment: d.ExperimentKey, Variant: d.Variant, Segment: d.Segment,
				AssignmentProbability: d.Probability}
		}
	case consent.Analytics:
		if s.Exposures != nil && resp.Decision != nil {
			s.logExposures(userID, []experiments.Keyed{*resp.Decision}, nil)
		}
		if s.Impressions != nil && len(resp.Items) > 0 {
			s.Impressions.Log(userID, im)
		}
	}
	return c.JSONBlob(http.StatusOK, appendRecommendResponse(make([]byte, 0, 512), &out))
}

// appendRecommendResponse encodes the answer by hand, as the decide answer is: the
// reflection of encoding/json costs more than scoring the items.
func appendRecommendResponse(b []byte, r *recommendResponse) []byte {
	b = append(b, `{"user_id":`...)
	b = appendString(b, r.UserID)
	b = append(b, `,"recommender":`...)
	b = appendString(b, r.Recommender)
	b = append(b, `,"items":[`...)
	for i, it := range r.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"item":`...)
		b = appendString(b, it.Item)
		b = append(b, `,"score":`...)
		b = strconv.AppendFloat(b, it.Score, 'g', -1, 32) // float32 sums of similarities: finite
		b = append(b, `,"source":`...)
		b = appendString(b, it.Source)
		b = append(b, '}')
	}
	b = append(b, `],"model_version":`...)
	b = strconv.AppendInt(b, r.ModelVersion, 10)
	b = append(b, `,"strategy":`...)
	b = appendString(b, r.Strategy)
	b = append(b, `,"recommendation_id":`...)
	b = appendString(b, r.RecommendationID)
	if r.Experiment != "" {
		b = append(b, `,"experiment":`...)
		b = appendString(b, r.Experiment)
		b = append(b, `,"variant":`...)
		b = appendString(b, r.Variant)
	}
	// Only with track false: encoding/json is fine there.
	if r.Impression != nil {
		enc, _ := json.Marshal(r.Impression) // strings and numbers: cannot fail
		b = append(append(b, `,"impression":`...), enc...)
	}
	if r.Exposure != nil {
		enc, _ := json.Marshal(r.Exposure)
		b = append(append(b, `,"exposure":`...), enc...)
	}
	return append(b, '}')
}

// trainRecommender serves POST /api/v1/recommenders/{key}/train: the trainer that
// leads trains it within seconds; GET /api/v1/recommenders/{key}/models shows when.
func (s *server) trainRecommender(c echo.Context) error {
	ctx, key := c.Request().Context(), c.Param("key")
	if _, err := s.Manager.Get(ctx, experiments.KindRecommender, key); err != nil {
		return err
	}
	at, err := s.RecommenderModels.RequestTraining(ctx, key, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"recommender": key, "requested_at": at})
}

// recommenderModels serves GET /api/v1/recommenders/{key}/models: the stored models,
// newest first, and a pending training request.
func (s *server) recommenderModels(c echo.Context) error {
	ctx, key := c.Request().Context(), c.Param("key")
	if _, err := s.Manager.Get(ctx, experiments.KindRecommender, key); err != nil {
		return err
	}
	versions, asked, err := s.RecommenderModels.Versions(ctx, key)
	if err != nil {
		return err
	}
	if versions == nil {
		versions = []recommend.ModelInfo{}
	}
	out := map[string]any{"recommender": key, "items": versions}
	if !asked.IsZero() {
		out["training_requested_at"] = asked
	}
	return c.JSON(http.StatusOK, out)
}
