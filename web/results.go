package web

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
)

// ResultsReader computes an experiment's results.
type ResultsReader interface {
	// Results returns derrors.ErrNotFound for an unknown experiment.
	Results(ctx context.Context, key string) (experiments.Results, error)
}

func (s *server) results(c echo.Context) error {
	res, err := s.Results.Results(c.Request().Context(), c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
