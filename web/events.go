package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/web/auth"
)

// EventPublisher is the collector's view of the broker: Publish returns nil only once
// every event is confirmed.
type EventPublisher interface {
	Publish(ctx context.Context, events []ingest.Event) error
}

// ExposureLogger records exposures from /v1/decide; Log must not block.
type ExposureLogger interface {
	Log(userID string, x ingest.Exposure)
}

type collectResponse struct {
	Accepted int                `json:"accepted"`
	Rejected []ingest.Rejection `json:"rejected"`
}

// collect is POST /v1/events: it validates each event, publishes the valid ones and
// answers 202 once the broker confirmed all of them, or 400 with the same rejected
// list when every event was invalid. If the broker cannot confirm, nothing is
// reported as accepted (503): the client retries the whole request, and events
// carrying their own event_id are then stored once. The receive time is always the
// server's clock: a client's received_at is refused (ingest.Defaults).
func (s *server) collect(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	events, rejected, err := ingest.ParseRequest(body, ingest.Defaults{ReceivedAt: time.Now(), NewID: ingest.NewID, Types: s.Types})
	if err != nil {
		return err // a 400: derrors.ErrMalformed, or the envelope's derrors.BadRequest
	}
	for _, r := range rejected {
		s.EventMetrics.Rejected.WithLabelValues(r.Reason).Inc()
	}
	if len(events) == 0 && len(rejected) > 0 {
		return rejectedError(rejected)
	}
	accepted := len(events)
	source := keySource(c)
	for i := range events {
		events[i].Source = source
	}
	// Pseudonymised, scrubbed, and without the events consented to nothing (counted).
	events = s.Privacy.Collected(events)
	if err := s.Events.Publish(c.Request().Context(), events); err != nil {
		if errors.Is(err, derrors.ErrUnavailable) {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "event broker unavailable; retry later").SetInternal(err)
		}
		return err
	}
	s.EventMetrics.Accepted.Add(float64(len(events)))
	if rejected == nil {
		rejected = []ingest.Rejection{}
	}
	return c.JSON(http.StatusAccepted, collectResponse{Accepted: accepted, Rejected: rejected})
}

// keySource is where the collector's events come from: a server key is trusted to
// link identities, a client key (public) is not.
func keySource(c echo.Context) ingest.Source {
	if k, ok := c.Get(keyContext).(auth.Key); ok && k.Kind == auth.ServerKey {
		return ingest.SourceServer
	}
	return ingest.SourceClient
}

// logExposures logs one exposure per experiment the user was assigned to, once even
// when several decisions name it (the experiment and a flag that runs it); it returns
// logged, to which it appended the experiments, for the caller to reuse.
func (s *server) logExposures(userID string, decisions []experiments.Keyed, logged []string) []string {
	for _, d := range decisions {
		if !d.Assigned || slices.Contains(logged, d.ExperimentKey) {
			continue
		}
		logged = append(logged, d.ExperimentKey)
		s.Exposures.Log(userID, ingest.Exposure{
			Experiment: d.ExperimentKey, Variant: d.Variant, Segment: d.Segment, AssignmentProbability: d.Probability,
		})
	}
	return logged
}

// EventTypeManager is the management API's view of the custom event types.
type EventTypeManager interface {
	List(ctx context.Context) ([]ingest.EventType, error)
	Versions(ctx context.Context, name string) ([]ingest.EventType, error)
	Create(ctx context.Context, actor, name string, schema json.RawMessage) (ingest.EventType, error)
	Update(ctx context.Context, actor, name string, schema json.RawMessage) (ingest.EventType, error)
}

type eventTypeBody struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
}

func parseEventTypeBody(c echo.Context) (eventTypeBody, error) {
	var b eventTypeBody
	body, err := readBody(c)
	if err != nil {
		return b, err
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return b, decodeRequestError(err, nil, `{"name":"signup","schema":{"type":"object"}}`)
	}
	if len(b.Schema) == 0 {
		return b, derrors.Invalid("schema", "is required")
	}
	return b, nil
}

func (s *server) listEventTypes(c echo.Context) error {
	types, err := s.EventTypes.List(c.Request().Context())
	if err != nil {
		return err
	}
	if types == nil {
		types = []ingest.EventType{}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": types})
}

func (s *server) getEventType(c echo.Context) error {
	versions, err := s.EventTypes.Versions(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	latest := versions[len(versions)-1]
	return c.JSON(http.StatusOK, map[string]any{
		"name": latest.Name, "version": latest.Version, "schema": latest.Schema, "versions": versions,
	})
}

func (s *server) createEventType(c echo.Context) error {
	b, err := parseEventTypeBody(c)
	if err != nil {
		return err
	}
	t, err := s.EventTypes.Create(c.Request().Context(), actor(c), b.Name, b.Schema)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, t)
}

// updateEventType saves a new version; 422 when it would break existing consumers.
func (s *server) updateEventType(c echo.Context) error {
	b, err := parseEventTypeBody(c)
	if err != nil {
		return err
	}
	t, err := s.EventTypes.Update(c.Request().Context(), actor(c), c.Param("name"), b.Schema)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}
