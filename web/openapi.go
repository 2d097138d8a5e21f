package web

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDoc is the OpenAPI 3.1 document of every HTTP endpoint lift serves to
// programs (the dashboard's pages are not in it). TestOpenAPIRoutes keeps it and the
// router in step, and the handler and end-to-end tests validate responses against it.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI document; callers must not modify it.
func OpenAPI() []byte { return openAPIDoc }

func openAPIHandler() echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		return c.Blob(http.StatusOK, "application/json", openAPIDoc)
	}
}
