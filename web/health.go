package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/internal/derrors"
)

type readiness struct {
	Status   string            `json:"status"`
	Checks   map[string]string `json:"checks"`
	Snapshot struct {
		Version  string    `json:"version"`
		LoadedAt time.Time `json:"loaded_at"`
	} `json:"snapshot"`
}

// readyz answers 200 "ok" when every dependency answers, 200 "degraded" when one does
// not but decisions are still served from a loaded snapshot (taking the process out of
// a load balancer then would turn a database outage into a decision outage), and 503
// "unavailable" before any snapshot was loaded or when a check's error is of kind
// derrors.ErrUnavailable: the process cannot do its work at all (an ingest or worker
// process with a ClickHouse shard down, docs/deploy.md).
func (s *server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	r := readiness{Status: "ok", Checks: map[string]string{}}
	unavailable := false
	for name, err := range s.Ready(ctx) {
		if err != nil {
			r.Status = "degraded"
			r.Checks[name] = "error: " + err.Error()
			unavailable = unavailable || errors.Is(err, derrors.ErrUnavailable)
		} else {
			r.Checks[name] = "ok"
		}
	}
	snap := s.Snapshots.Snapshot()
	r.Snapshot.Version, r.Snapshot.LoadedAt = snap.Version, snap.LoadedAt
	if snap.LoadedAt.IsZero() || unavailable {
		r.Status = "unavailable"
		return c.JSON(http.StatusServiceUnavailable, r)
	}
	return c.JSON(http.StatusOK, r)
}
