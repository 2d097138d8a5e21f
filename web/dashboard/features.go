package dashboard

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
)

// Features are numbers and short lists the segment engine keeps per user over a
// sliding window (docs/recommendations.md); conditions read them as features.<key>.

// featureForm is the feature editor's view-model.
type featureForm struct {
	Editing                            bool
	Key, Name, Description, Kind       string
	Events, Where, Property, N, Within string
	UsedBy                             []usage
	Errors                             fieldErrors
}

// featureRow is one line of the features list.
type featureRow struct {
	Key, Name, Kind, Definition string
	UsedBy                      []usage
}

// describeFeature says what a feature counts, in words.
func describeFeature(f *experiments.Feature) string {
	events := strings.Join(featureEvents(f.Event), " or ")
	what := map[string]string{
		"count":    events + " events",
		"sum":      "value of " + events,
		"distinct": "distinct " + f.Property + " of " + events,
		"last":     "last " + f.Property + " of " + events,
		"last_n":   "last " + strconv.Itoa(f.N) + " distinct " + f.Property + " of " + events,
	}[f.Kind]
	if what == "" {
		what = f.Kind
	}
	if len(f.Where) > 0 {
		what += " where " + compactJSON(f.Where)
	}
	return what + ", within " + f.Within
}

// featureEvents reads the document's event: a type or an array of types.
func featureEvents(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	return many
}

func (d *Dashboard) featureList(c echo.Context) error {
	list, err := listDocs[experiments.Feature](c.Request().Context(), d, experiments.KindFeature)
	if err != nil {
		return err
	}
	uses, err := d.featureUsages(c)
	if err != nil {
		return err
	}
	rows := make([]featureRow, 0, len(list))
	for _, f := range list {
		rows = append(rows, featureRow{Key: f.Key, Name: f.Name, Kind: f.Kind, Definition: describeFeature(&f), UsedBy: uses[f.Key]})
	}
	return render(c, http.StatusOK, featureListView(d.page(c, "features", "Features"), rows))
}

// featureUsages finds, for every feature, the experiments, flags and attribute
// segments whose conditions read features.<key>.
func (d *Dashboard) featureUsages(c echo.Context) (map[string][]usage, error) {
	return d.conditionUsages(c.Request().Context(), featuresIn)
}

// featuresIn lists the features a condition reads (field paths features.<key>…).
func featuresIn(cond json.RawMessage) []string {
	var keys []string
	for rest := string(cond); ; {
		i := strings.Index(rest, `"features.`)
		if i < 0 {
			return keys
		}
		rest = rest[i+len(`"features.`):]
		key, _, _ := strings.Cut(rest, `"`)
		key, _, _ = strings.Cut(key, ".")
		keys = append(keys, key)
	}
}

func (d *Dashboard) loadFeature(c echo.Context) (*experiments.Feature, error) {
	return getDoc[experiments.Feature](d, c, experiments.KindFeature)
}

func (d *Dashboard) featureNew(c echo.Context) error {
	f := &featureForm{Kind: "count", Events: "product_view", Within: "10m"}
	return render(c, http.StatusOK, featureFormView(d.page(c, "features", "New feature"), f))
}

func (d *Dashboard) featureEdit(c echo.Context) error {
	doc, err := d.loadFeature(c)
	if err != nil {
		return err
	}
	f := &featureForm{Editing: true, Key: doc.Key, Name: doc.Name, Description: doc.Description, Kind: doc.Kind,
		Events: strings.Join(featureEvents(doc.Event), ", "), Where: prettyJSON(doc.Where), Property: doc.Property, Within: doc.Within}
	if doc.N > 0 {
		f.N = strconv.Itoa(doc.N)
	}
	uses, err := d.featureUsages(c)
	if err != nil {
		return err
	}
	f.UsedBy = uses[doc.Key]
	return render(c, http.StatusOK, featureFormView(d.page(c, "features", doc.Key), f))
}

func (d *Dashboard) featureCreate(c echo.Context) error { return d.saveFeature(c, false) }
func (d *Dashboard) featureUpdate(c echo.Context) error { return d.saveFeature(c, true) }

func (d *Dashboard) saveFeature(c echo.Context, editing bool) error {
	f := &featureForm{Editing: editing, Key: strings.TrimSpace(c.FormValue("key")), Name: strings.TrimSpace(c.FormValue("name")),
		Description: strings.TrimSpace(c.FormValue("description")), Kind: c.FormValue("kind"), Events: c.FormValue("event"),
		Where: strings.TrimSpace(c.FormValue("where")), Property: strings.TrimSpace(c.FormValue("property")),
		N: strings.TrimSpace(c.FormValue("n")), Within: strings.TrimSpace(c.FormValue("within"))}
	if editing {
		doc, err := d.loadFeature(c)
		if err != nil {
			return err
		}
		f.Key = doc.Key
	}
	body, errs := f.document()
	if errs == nil {
		var err error
		if errs, err = d.save(c, experiments.KindFeature, f.Key, editing, body); err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		f.Errors = errs
		title := "New feature"
		if editing {
			title = f.Key
		}
		return render(c, http.StatusUnprocessableEntity, featureFormView(d.page(c, "features", title), f))
	}
	return c.Redirect(http.StatusSeeOther, "/features")
}

// document builds the feature document from the form; the service validates it.
func (f *featureForm) document() ([]byte, fieldErrors) {
	var errs fieldErrors
	doc := experiments.Feature{Key: f.Key, Name: f.Name, Description: f.Description, Kind: f.Kind, Property: f.Property, Within: f.Within}
	var events []string
	for _, e := range strings.Split(f.Events, ",") {
		if e = strings.TrimSpace(e); e != "" {
			events = append(events, e)
		}
	}
	if len(events) == 1 {
		doc.Event, _ = json.Marshal(events[0])
	} else {
		doc.Event, _ = json.Marshal(events)
	}
	if f.Where != "" {
		if !json.Valid([]byte(f.Where)) {
			errs = append(errs, derrors.FieldError{Field: "where", Message: "is not valid JSON"})
		}
		doc.Where = json.RawMessage(f.Where)
	}
	if f.N != "" {
		n, err := strconv.Atoi(f.N)
		if err != nil {
			errs = append(errs, derrors.FieldError{Field: "n", Message: "must be a whole number"})
		}
		doc.N = n
	}
	if len(errs) > 0 {
		return nil, errs
	}
	b, err := json.Marshal(&doc)
	if err != nil {
		return nil, fieldErrors{{Field: "(document)", Message: err.Error()}}
	}
	return b, nil
}

func featureFormAction(f *featureForm) templ.SafeURL {
	if f.Editing {
		return templ.SafeURL("/features/" + f.Key)
	}
	return "/features"
}
