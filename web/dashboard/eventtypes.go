package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/ingest"
)

// EventTypes is what the event types pages read.
type EventTypes interface {
	LatestTypes(ctx context.Context) ([]ingest.EventType, error)
	// TypeVersions returns the versions oldest first; none for an unknown name.
	TypeVersions(ctx context.Context, name string) ([]ingest.EventType, error)
}

type eventTypeRow struct {
	Name, Version, Created, CreatedBy, Schema string
}

func eventTypeRowOf(t ingest.EventType) eventTypeRow {
	r := eventTypeRow{Name: t.Name, Version: "v" + strconv.Itoa(t.Version), Created: t.CreatedAt.UTC().Format("Jan 2, 2006 15:04 UTC"), CreatedBy: t.CreatedBy}
	var buf bytes.Buffer
	if err := json.Indent(&buf, t.Schema, "", "  "); err == nil {
		r.Schema = buf.String()
	} else {
		r.Schema = string(t.Schema)
	}
	return r
}

func (d *Dashboard) eventTypeList(c echo.Context) error {
	p := d.page(c, "event-types", "Event types")
	if d.EventTypes == nil {
		return render(c, http.StatusOK, eventTypeListView(p, nil, false))
	}
	types, err := d.EventTypes.LatestTypes(c.Request().Context())
	if err != nil {
		return err
	}
	rows := make([]eventTypeRow, 0, len(types))
	for _, t := range types {
		rows = append(rows, eventTypeRowOf(t))
	}
	return render(c, http.StatusOK, eventTypeListView(p, rows, true))
}

func (d *Dashboard) eventTypeDetail(c echo.Context) error {
	if d.EventTypes == nil {
		return echo.NewHTTPError(http.StatusNotFound, "Event types are not available on this server.")
	}
	name := c.Param("name")
	versions, err := d.EventTypes.TypeVersions(c.Request().Context(), name)
	if err != nil {
		return err
	}
	if len(versions) == 0 {
		return echo.NewHTTPError(http.StatusNotFound, "There is no event type named "+name+".")
	}
	rows := make([]eventTypeRow, 0, len(versions))
	for _, t := range slices.Backward(versions) {
		rows = append(rows, eventTypeRowOf(t))
	}
	return render(c, http.StatusOK, eventTypeDetailView(d.page(c, "event-types", name), name, rows))
}
