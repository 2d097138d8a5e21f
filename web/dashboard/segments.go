package dashboard

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/segments"
)

// segmentForm is the attribute segment editor's view-model.
type segmentForm struct {
	Editing                           bool
	Key, Name, Description, Condition string
	Attributes                        string
	Errors                            fieldErrors
}

// segmentRow is one line of the segments list.
type segmentRow struct {
	Key, Name, Kind, Condition string
}

func (d *Dashboard) segmentList(c echo.Context) error {
	docs, err := d.Config.List(c.Request().Context(), experiments.KindSegment)
	if err != nil {
		return err
	}
	rows := make([]segmentRow, 0, len(docs))
	for _, doc := range docs {
		var s experiments.Segment
		if err := json.Unmarshal(doc, &s); err != nil {
			return err
		}
		rows = append(rows, segmentRow{Key: s.Key, Name: s.Name, Kind: s.Kind, Condition: string(s.Condition)})
	}
	return render(c, http.StatusOK, segmentListView(d.page(c, "segments", "Segments"), rows))
}

func (d *Dashboard) loadSegment(c echo.Context) (*experiments.Segment, error) {
	doc, err := d.Config.Get(c.Request().Context(), experiments.KindSegment, c.Param("key"))
	if err != nil {
		return nil, err
	}
	var s experiments.Segment
	if err := json.Unmarshal(doc, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (d *Dashboard) segmentNew(c echo.Context) error {
	f := &segmentForm{Condition: "{\n  \"country\": {\"$in\": [\"US\", \"CA\"]}\n}", Attributes: `{"country": "US"}`}
	return render(c, http.StatusOK, segmentFormView(d.page(c, "segments", "New segment"), f, nil))
}

func (d *Dashboard) segmentEdit(c echo.Context) error {
	s, err := d.loadSegment(c)
	if err != nil {
		return err
	}
	f := &segmentForm{Editing: true, Key: s.Key, Name: s.Name, Description: s.Description, Condition: prettyJSON(s.Condition), Attributes: "{}"}
	return render(c, http.StatusOK, segmentFormView(d.page(c, "segments", s.Key), f, nil))
}

func (d *Dashboard) segmentCreate(c echo.Context) error { return d.saveSegment(c, false) }
func (d *Dashboard) segmentUpdate(c echo.Context) error { return d.saveSegment(c, true) }

func (d *Dashboard) saveSegment(c echo.Context, editing bool) error {
	f := &segmentForm{Editing: editing, Key: strings.TrimSpace(c.FormValue("key")), Name: strings.TrimSpace(c.FormValue("name")),
		Description: strings.TrimSpace(c.FormValue("description")), Condition: c.FormValue("condition"), Attributes: c.FormValue("attributes")}
	base := &experiments.Segment{Kind: "attribute"}
	if editing {
		var err error
		if base, err = d.loadSegment(c); err != nil {
			return err
		}
		f.Key = base.Key
	}
	s := *base
	s.Key, s.Name, s.Description = f.Key, f.Name, f.Description
	s.Condition = nil
	var errs fieldErrors
	if cond := strings.TrimSpace(f.Condition); cond != "" {
		if !json.Valid([]byte(cond)) {
			errs = fieldErrors{{Field: "condition", Message: "is not valid JSON"}}
		}
		s.Condition = json.RawMessage(cond)
	}
	if errs == nil {
		body, err := json.Marshal(&s)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		if editing {
			_, err = d.Config.Replace(ctx, actor(c), experiments.KindSegment, f.Key, body)
		} else {
			_, err = d.Config.Create(ctx, actor(c), experiments.KindSegment, body)
		}
		if errs, err = asFieldErrors(err); err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		f.Errors = errs
		title := "New segment"
		if editing {
			title = f.Key
		}
		return render(c, http.StatusUnprocessableEntity, segmentFormView(d.page(c, "segments", title), f, nil))
	}
	return c.Redirect(http.StatusSeeOther, "/segments")
}

// testResult is the answer of the "test a user" box.
type testResult struct {
	Match bool
	Error string
}

// matchUser evaluates a condition against attributes, with the saved groups known to
// lift, exactly as decisions do.
func (d *Dashboard) matchUser(c echo.Context, condition, attributes string) testResult {
	cond, err := segments.ParseConditionJSON([]byte(condition))
	if err != nil {
		return testResult{Error: "Condition: " + err.Error()}
	}
	var attrs map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(attributes)))
	if err := dec.Decode(&attrs); err != nil {
		return testResult{Error: `Attributes must be a JSON object, such as {"country": "US"}.`}
	}
	groups := segments.SavedGroups{}
	docs, err := d.Config.List(c.Request().Context(), experiments.KindSavedGroup)
	if err != nil {
		return testResult{Error: "Could not load saved groups; try again."}
	}
	for _, doc := range docs {
		var g experiments.SavedGroup
		if json.Unmarshal(doc, &g) == nil {
			groups[g.Key] = g.Values
		}
	}
	return testResult{Match: cond.Match(attrs, groups)}
}

// segmentTest answers the "test a user" box: the result fragment for htmx, or the
// result on its own page without JavaScript.
func (d *Dashboard) segmentTest(c echo.Context) error {
	r := d.matchUser(c, c.FormValue("condition"), c.FormValue("attributes"))
	if c.Request().Header.Get("HX-Request") != "" {
		return render(c, http.StatusOK, testResultView(&r))
	}
	return render(c, http.StatusOK, testResultPage(d.page(c, "segments", "Test result"), &r))
}

func segmentFormAction(f *segmentForm) templ.SafeURL {
	if f.Editing {
		return templ.SafeURL("/segments/" + f.Key)
	}
	return "/segments"
}

func orKey(name, key string) string {
	if name != "" {
		return name
	}
	return key
}
