package web

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/bandit"
)

// BanditReporter reports on a bandit experiment.
type BanditReporter interface {
	// BanditReport returns derrors.ErrNotFound for an unknown experiment and a
	// validation error for one that is not a bandit.
	BanditReport(ctx context.Context, key string) (bandit.Report, error)
}

func (s *server) banditReport(c echo.Context) error {
	rep, err := s.Bandits.BanditReport(c.Request().Context(), c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}
