package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
)

// Saved groups are named lists of values (user ids, account ids, postcodes) that
// conditions test with {"attr": {"$inGroup": "key"}}.

// Value types a saved group editor offers. Text and numbers are one value a line;
// "json" is one JSON value a line, for groups mixing types.
const (
	groupText    = "text"
	groupNumbers = "numbers"
	groupJSON    = "json"
)

// groupForm is the saved group editor's view-model.
type groupForm struct {
	Editing         bool
	Key, Name, Type string
	Values          string
	UsedBy          []usage
	Errors          fieldErrors
}

// usage is a document whose conditions test a saved group.
type usage struct{ Kind, Key, URL string }

// groupRow is one line of the saved groups list.
type groupRow struct {
	Key, Name, Count, Sample string
	UsedBy                   []usage
}

func (d *Dashboard) groupList(c echo.Context) error {
	list, err := listDocs[experiments.SavedGroup](c.Request().Context(), d, experiments.KindSavedGroup)
	if err != nil {
		return err
	}
	uses, err := d.groupUsages(c)
	if err != nil {
		return err
	}
	rows := make([]groupRow, 0, len(list))
	for _, g := range list {
		sample := make([]string, 0, 3)
		typ := groupTypeOf(g.Values)
		for _, v := range g.Values[:min(3, len(g.Values))] {
			sample = append(sample, valueLine(v, typ))
		}
		s := strings.Join(sample, ", ")
		if len(g.Values) > 3 {
			s += ", …"
		}
		rows = append(rows, groupRow{Key: g.Key, Name: g.Name, Count: count(float64(len(g.Values))), Sample: s, UsedBy: uses[g.Key]})
	}
	return render(c, http.StatusOK, groupListView(d.page(c, "saved-groups", "Saved groups"), rows))
}

// groupUsages finds, for every saved group, the experiments, flags and attribute
// segments whose conditions test it.
func (d *Dashboard) groupUsages(c echo.Context) (map[string][]usage, error) {
	return d.conditionUsages(c.Request().Context(), groupsIn)
}

// conditionUsages maps each key that keysIn finds in a condition to the experiments,
// flags and attribute segments whose conditions have it.
func (d *Dashboard) conditionUsages(ctx context.Context, keysIn func(json.RawMessage) []string) (map[string][]usage, error) {
	out := map[string][]usage{}
	note := func(u usage, cond json.RawMessage) {
		for _, k := range keysIn(cond) {
			if !slices.Contains(out[k], u) {
				out[k] = append(out[k], u)
			}
		}
	}
	for _, kind := range []experiments.Kind{experiments.KindExperiment, experiments.KindFlag, experiments.KindSegment} {
		docs, err := d.Config.List(ctx, kind)
		if err != nil {
			return nil, err
		}
		for _, doc := range docs {
			switch kind {
			case experiments.KindExperiment:
				var e experiments.Experiment
				if json.Unmarshal(doc, &e) == nil {
					note(usage{"experiment", e.Key, "/experiments/" + e.Key}, e.Targeting)
				}
			case experiments.KindFlag:
				var f experiments.Flag
				if json.Unmarshal(doc, &f) == nil {
					for _, r := range f.Rules {
						note(usage{"flag", f.Key, "/flags/" + f.Key}, r.Condition)
					}
				}
			case experiments.KindSegment:
				var s experiments.Segment
				if json.Unmarshal(doc, &s) == nil {
					note(usage{"segment", s.Key, "/segments/" + s.Key}, s.Condition)
				}
			}
		}
	}
	return out, nil
}

// groupsIn lists the saved groups a condition names with $inGroup or $notInGroup.
func groupsIn(cond json.RawMessage) []string {
	if len(cond) == 0 || !strings.Contains(string(cond), "nGroup\"") {
		return nil // most conditions: no need to decode
	}
	var doc any
	if json.Unmarshal(cond, &doc) != nil {
		return nil
	}
	var found []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, sub := range x {
				if name, ok := sub.(string); ok && (k == "$inGroup" || k == "$notInGroup") {
					found = append(found, name)
				}
				walk(sub)
			}
		case []any:
			for _, sub := range x {
				walk(sub)
			}
		}
	}
	walk(doc)
	return found
}

func (d *Dashboard) loadGroup(c echo.Context) (*experiments.SavedGroup, error) {
	return getDoc[experiments.SavedGroup](d, c, experiments.KindSavedGroup)
}

func (d *Dashboard) groupNew(c echo.Context) error {
	return render(c, http.StatusOK, groupFormView(d.page(c, "saved-groups", "New saved group"), &groupForm{Type: groupText}))
}

func (d *Dashboard) groupEdit(c echo.Context) error {
	g, err := d.loadGroup(c)
	if err != nil {
		return err
	}
	f := &groupForm{Editing: true, Key: g.Key, Name: g.Name, Type: groupTypeOf(g.Values)}
	lines := make([]string, len(g.Values))
	for i, v := range g.Values {
		lines[i] = valueLine(v, f.Type)
	}
	f.Values = strings.Join(lines, "\n")
	uses, err := d.groupUsages(c)
	if err != nil {
		return err
	}
	f.UsedBy = uses[g.Key]
	return render(c, http.StatusOK, groupFormView(d.page(c, "saved-groups", g.Key), f))
}

// groupTypeOf picks how the editor shows stored values: as text or numbers when they
// are all of that type, else as JSON.
func groupTypeOf(values []any) string {
	strs, nums := 0, 0
	for _, v := range values {
		switch x := v.(type) {
		case string:
			if x == strings.TrimSpace(x) && x != "" && !strings.Contains(x, "\n") {
				strs++
			}
		case float64:
			nums++
		}
	}
	switch {
	case nums == len(values) && nums > 0:
		return groupNumbers
	case strs == len(values):
		return groupText
	}
	return groupJSON
}

// valueLine shows one value on its line of the editor.
func valueLine(v any, typ string) string {
	if s, ok := v.(string); ok && typ == groupText {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (d *Dashboard) groupCreate(c echo.Context) error { return d.saveGroup(c, false) }
func (d *Dashboard) groupUpdate(c echo.Context) error { return d.saveGroup(c, true) }

func (d *Dashboard) saveGroup(c echo.Context, editing bool) error {
	f := &groupForm{Editing: editing, Key: strings.TrimSpace(c.FormValue("key")), Name: strings.TrimSpace(c.FormValue("name")),
		Type: c.FormValue("type"), Values: c.FormValue("values")}
	if editing {
		g, err := d.loadGroup(c)
		if err != nil {
			return err
		}
		f.Key = g.Key
	}
	values, errs := f.parseValues()
	if errs == nil {
		body, err := json.Marshal(experiments.SavedGroup{Key: f.Key, Name: f.Name, Values: values})
		if err != nil {
			return err
		}
		if errs, err = d.save(c, experiments.KindSavedGroup, f.Key, editing, body); err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		f.Errors = errs
		title := "New saved group"
		if editing {
			title = f.Key
		}
		return render(c, http.StatusUnprocessableEntity, groupFormView(d.page(c, "saved-groups", title), f))
	}
	return c.Redirect(http.StatusSeeOther, "/saved-groups/"+f.Key)
}

// maxGroupValues bounds one group; conditions hold the whole list in memory in every
// decision process.
const maxGroupValues = 100_000

// parseValues reads one value a line, skipping blank lines and repeats, typed as the
// form says; every unreadable line is reported by its number.
func (f *groupForm) parseValues() ([]any, fieldErrors) {
	var errs fieldErrors
	values := []any{}
	seen := map[string]bool{}
	for i, line := range strings.Split(f.Values, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || seen[line] {
			continue
		}
		seen[line] = true
		var v any
		switch f.Type {
		case groupNumbers:
			n, err := strconv.ParseFloat(line, 64)
			if err != nil {
				errs = append(errs, derrors.FieldError{Field: "values", Message: fmt.Sprintf("line %d: %q is not a number", i+1, line)})
				continue
			}
			v = n
		case groupJSON:
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				errs = append(errs, derrors.FieldError{Field: "values", Message: fmt.Sprintf("line %d: not a JSON value (text needs quotes)", i+1)})
				continue
			}
		default:
			v = line
		}
		values = append(values, v)
		if len(errs) >= 10 {
			break // enough to go on with
		}
	}
	if len(values) > maxGroupValues {
		errs = append(errs, derrors.FieldError{Field: "values", Message: fmt.Sprintf("at most %s values", count(maxGroupValues))})
	}
	return values, errs
}

func groupFormAction(f *groupForm) templ.SafeURL {
	if f.Editing {
		return templ.SafeURL("/saved-groups/" + f.Key)
	}
	return "/saved-groups"
}

func lineCount(s string) string {
	n := 0
	for line := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(line) != "" {
			n++
		}
	}
	return plural(n, "value")
}
