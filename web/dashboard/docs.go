package dashboard

import (
	"context"
	"encoding/json"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
)

// getDoc reads the configuration document of kind that the route's :key names.
func getDoc[T any](d *Dashboard, c echo.Context, kind experiments.Kind) (*T, error) {
	doc, err := d.Config.Get(c.Request().Context(), kind, c.Param("key"))
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal(doc, v); err != nil {
		return nil, err
	}
	return v, nil
}

// listDocs reads every configuration document of kind, in the store's order.
func listDocs[T any](ctx context.Context, d *Dashboard, kind experiments.Kind) ([]T, error) {
	docs, err := d.Config.List(ctx, kind)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(docs))
	for i, doc := range docs {
		if err := json.Unmarshal(doc, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
