package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/internal/derrors"
)

// EventTypes is what the event types pages read.
type EventTypes interface {
	LatestTypes(ctx context.Context) ([]ingest.EventType, error)
	// TypeVersions returns the versions oldest first; none for an unknown name.
	TypeVersions(ctx context.Context, name string) ([]ingest.EventType, error)
}

// EventTypeCreator registers custom event types (typereg.Service): it returns a
// *derrors.ValidationError for a bad name or schema and derrors.ErrConflict when the
// type exists.
type EventTypeCreator interface {
	Create(ctx context.Context, actor, name string, schema json.RawMessage) (ingest.EventType, error)
}

// builtinEventTypes says what each of lift's own event types is for; the page lists
// exactly ingest.BuiltinTypes(), the types the collector accepts without a schema.
var builtinEventTypes = map[string]string{
	"page_view":        "a page was shown",
	"product_view":     "a product was looked at",
	"click":            "something was clicked",
	"add_to_cart":      "a product went into the cart",
	"remove_from_cart": "a product left the cart",
	"purchase":         "an order; value (≥ 0) is required",
	"$exposure":        "a user saw a variant (lift and lift.js log it)",
	"$identify":        "links an anonymous id to a signed-in user (lift.js sends it)",
}

type builtinRow struct{ Name, About string }

func builtinRows() []builtinRow {
	names := ingest.BuiltinTypes()
	rows := make([]builtinRow, len(names))
	for i, n := range names {
		rows[i] = builtinRow{n, builtinEventTypes[n]}
	}
	return rows
}

// knownEventTypes returns every event type the collector accepts now, built-in and
// custom; ok is false when the custom ones cannot be known (no event type store, or
// it failed), so that nothing is flagged as missing on a guess.
func (d *Dashboard) knownEventTypes(ctx context.Context) (map[string]bool, bool) {
	if d.EventTypes == nil {
		return nil, false
	}
	types, err := d.EventTypes.LatestTypes(ctx)
	if err != nil {
		d.Log.WarnContext(ctx, "event types unavailable", "err", err)
		return nil, false
	}
	known := map[string]bool{}
	for _, n := range ingest.BuiltinTypes() {
		known[n] = true
	}
	for _, t := range types {
		known[t.Name] = true
	}
	return known, true
}

// eventTypeForm is the new event type form.
type eventTypeForm struct {
	Name, Schema string
	Errors       fieldErrors
}

const defaultSchema = `{
  "type": "object",
  "properties": {}
}`

func (d *Dashboard) eventTypeNew(c echo.Context) error {
	if d.TypeCreator == nil {
		return echo.NewHTTPError(http.StatusNotFound, "Event types cannot be registered on this server (it does not run the event collector).")
	}
	f := &eventTypeForm{Name: strings.TrimSpace(c.QueryParam("name")), Schema: defaultSchema}
	return render(c, http.StatusOK, eventTypeFormView(d.page(c, "event-types", "New event type"), f))
}

func (d *Dashboard) eventTypeCreate(c echo.Context) error {
	if d.TypeCreator == nil {
		return echo.NewHTTPError(http.StatusNotFound, "Event types cannot be registered on this server (it does not run the event collector).")
	}
	f := &eventTypeForm{Name: strings.TrimSpace(c.FormValue("name")), Schema: c.FormValue("schema")}
	schema := strings.TrimSpace(f.Schema)
	if schema == "" {
		schema = `{"type":"object"}`
	}
	if msg := jsonProblem(schema); msg != "" {
		f.Errors = fieldErrors{{Field: "schema", Message: msg}}
	} else if _, err := d.TypeCreator.Create(c.Request().Context(), actor(c), f.Name, json.RawMessage(schema)); err != nil {
		var v *derrors.ValidationError
		switch {
		case errors.As(err, &v):
			f.Errors = append(f.Errors, v.Fields...)
		case errors.Is(err, derrors.ErrConflict):
			f.Errors = fieldErrors{{Field: "name", Message: "is taken: an event type of that name exists (add a version through the API)"}}
		default:
			return err
		}
	}
	if len(f.Errors) > 0 {
		return render(c, http.StatusUnprocessableEntity, eventTypeFormView(d.page(c, "event-types", "New event type"), f))
	}
	setFlash(c, flash{Tone: "success", Text: "Event type " + f.Name + " registered: the collector accepts it within a second."})
	return c.Redirect(http.StatusSeeOther, "/event-types/"+f.Name)
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
		return render(c, http.StatusOK, eventTypeListView(p, nil, false, false))
	}
	types, err := d.EventTypes.LatestTypes(c.Request().Context())
	if err != nil {
		return err
	}
	rows := make([]eventTypeRow, 0, len(types))
	for _, t := range types {
		rows = append(rows, eventTypeRowOf(t))
	}
	return render(c, http.StatusOK, eventTypeListView(p, rows, true, d.TypeCreator != nil && p.CanEdit()))
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
