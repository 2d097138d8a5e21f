package web

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/segments/pgstore"
)

// SegmentStats reports behavioural segment sizes.
type SegmentStats interface {
	Stats(ctx context.Context, segment string) (pgstore.Stats, error)
}

// segmentStats serves GET /api/v1/segments/{key}/stats: members now, entries and exits
// over the last hour (behavioural segments; an attribute segment's membership depends
// on the attributes of each request, so it has no size).
func (s *server) segmentStats(c echo.Context) error {
	key := c.Param("key")
	if _, err := s.Manager.Get(c.Request().Context(), experiments.KindSegment, key); err != nil {
		return err
	}
	st, err := s.SegmentStats.Stats(c.Request().Context(), key)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}
