package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
)

// experimentRow is one line of the experiments list.
type experimentRow struct {
	Key, Name, Status, Traffic, Goal, Type string
	Variants                               int
	HasGoal                                bool
	// GoalMissing: no event type of the goal's name exists, so it never converts.
	GoalMissing bool
	// VariantNames are the names given to variants, by key.
	VariantNames map[string]string
}

// traffic is the share of all users an experiment can reach: coverage times its
// namespace slice.
func traffic(e *experiments.Experiment) float64 {
	t := 1.0
	if e.Coverage != nil {
		t = *e.Coverage
	}
	if ns := e.Namespace; ns != nil {
		t *= ns.Range[1] - ns.Range[0]
	}
	return t
}

// statusOrder puts what needs attention first.
var statusOrder = map[string]int{experiments.StatusRunning: 0, experiments.StatusPaused: 1, experiments.StatusDraft: 2, experiments.StatusStopped: 3}

func (d *Dashboard) experimentList(c echo.Context) error {
	list, err := listDocs[experiments.Experiment](c.Request().Context(), d, experiments.KindExperiment)
	if err != nil {
		return err
	}
	known, knowTypes := d.knownEventTypes(c.Request().Context())
	rows := make([]experimentRow, 0, len(list))
	counts := map[string]int{}
	for _, e := range list {
		r := experimentRow{Key: e.Key, Name: e.Name, Status: e.Status, Variants: len(e.Variants), Traffic: percent(traffic(&e)), Goal: "—", Type: e.Type,
			VariantNames: variantNames(&e)}
		if e.Goal != nil {
			r.Goal, r.HasGoal = e.Goal.Event, true
			r.GoalMissing = knowTypes && !known[e.Goal.Event]
		}
		counts[e.Status]++
		rows = append(rows, r)
	}
	filter := c.QueryParam("status")
	if filter != "" {
		kept := rows[:0]
		for _, r := range rows {
			if r.Status == filter {
				kept = append(kept, r)
			}
		}
		rows = kept
	}
	sort.SliceStable(rows, func(i, j int) bool { return statusOrder[rows[i].Status] < statusOrder[rows[j].Status] })
	var heads map[string]headline
	if d.cache != nil {
		heads = d.cache.headlines(c.Request().Context(), rows)
		d.describeHeadlines(c.Request().Context(), rows, heads)
	}
	return render(c, http.StatusOK, experimentListView(d.page(c, "experiments", "Experiments"), rows, heads, counts, len(list), filter))
}

func (d *Dashboard) loadExperiment(c echo.Context) (*experiments.Experiment, error) {
	return getDoc[experiments.Experiment](d, c, experiments.KindExperiment)
}

func (d *Dashboard) experimentDetail(c echo.Context) error {
	e, err := d.loadExperiment(c)
	if err != nil {
		return err
	}
	history, err := d.Config.Audit(c.Request().Context(), experiments.AuditQuery{Entity: experiments.KindExperiment, Key: e.Key, Limit: 10})
	if err != nil {
		return err
	}
	results := d.experimentResults(c.Request().Context(), e, c.QueryParam("refresh") != "")
	var bs *banditState
	if e.Type == experiments.TypeBandit {
		var res *experiments.Results
		if results.View != nil {
			res = &results.View.Res
		}
		s := d.banditReport(c.Request().Context(), e, res)
		bs = &s
	}
	missing := d.missingEventTypes(c.Request().Context(), e)
	return render(c, http.StatusOK, experimentDetailView(d.page(c, "experiments", e.Name), e, results, bs, history, missing))
}

// segmentKeys lists the attribute segments an experiment or flag rule may name.
func (d *Dashboard) segmentKeys(c echo.Context) ([]string, error) {
	list, err := listDocs[struct{ Key string }](c.Request().Context(), d, experiments.KindSegment)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(list))
	for i, s := range list {
		keys[i] = s.Key
	}
	return keys, nil
}

func (d *Dashboard) experimentNew(c echo.Context) error {
	f := newExperimentForm()
	return d.showExperimentForm(c, http.StatusOK, f)
}

func (d *Dashboard) experimentEdit(c echo.Context) error {
	e, err := d.loadExperiment(c)
	if err != nil {
		return err
	}
	return d.showExperimentForm(c, http.StatusOK, experimentFormFrom(e))
}

func (d *Dashboard) showExperimentForm(c echo.Context, status int, f *experimentForm) error {
	all, err := d.segmentKeys(c)
	if err != nil {
		return err
	}
	f.AllSegments = all
	if known, ok := d.knownEventTypes(c.Request().Context()); ok {
		for n := range known {
			if !strings.HasPrefix(n, "$") {
				f.EventTypes = append(f.EventTypes, n)
			}
		}
		sort.Strings(f.EventTypes)
	}
	title := "New experiment"
	if f.Editing {
		title = "Edit " + f.Key
	}
	return render(c, status, experimentFormView(d.page(c, "experiments", title), f))
}

func (d *Dashboard) experimentCreate(c echo.Context) error {
	return d.saveExperiment(c, false)
}

func (d *Dashboard) experimentUpdate(c echo.Context) error {
	return d.saveExperiment(c, true)
}

// saveExperiment handles both the editing buttons of the form (re-render with the
// change) and saving; invalid input re-renders the form with every problem listed
// (422), never a 500.
func (d *Dashboard) saveExperiment(c echo.Context, editing bool) error {
	f, err := readExperimentForm(c, editing)
	if err != nil {
		return err
	}
	base := &experiments.Experiment{}
	if editing {
		if base, err = d.loadExperiment(c); err != nil {
			return err
		}
		f.Key = base.Key
	}
	if f.AllSegments, err = d.segmentKeys(c); err != nil {
		return err
	}
	if f.apply(c.FormValue("op")) {
		return d.showExperimentForm(c, http.StatusOK, f)
	}
	body, errs := f.document(base)
	if errs == nil {
		if errs, err = d.save(c, experiments.KindExperiment, f.Key, editing, body); err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		f.Errors = errs
		return d.showExperimentForm(c, http.StatusUnprocessableEntity, f)
	}
	saved := flash{Tone: "success", Text: "Experiment saved."}
	var doc experiments.Experiment
	if json.Unmarshal(body, &doc) == nil {
		if missing := d.missingEventTypes(c.Request().Context(), &doc); len(missing) > 0 {
			saved = flash{Tone: "warn", Text: "Experiment saved, but " + missingText(missing) + " Register it, or change the event.",
				Link: "/event-types/new?name=" + url.QueryEscape(missing[0]), LinkText: "Register " + missing[0]}
		}
	}
	setFlash(c, saved)
	return c.Redirect(http.StatusSeeOther, "/experiments/"+f.Key)
}

// missingEventTypes lists the goal and metric events of e that no event type has
// (the collector rejects such events, so those metrics never move); none when the
// event types cannot be known.
func (d *Dashboard) missingEventTypes(ctx context.Context, e *experiments.Experiment) []string {
	known, ok := d.knownEventTypes(ctx)
	if !ok {
		return nil
	}
	var events []string
	if e.Goal != nil {
		events = append(events, e.Goal.Event)
	}
	for _, m := range e.Metrics {
		events = append(events, m.Event)
	}
	var missing []string
	for _, ev := range events {
		if ev != "" && !known[ev] && !slices.Contains(missing, ev) {
			missing = append(missing, ev)
		}
	}
	return missing
}

// missingText explains missing event types in one sentence.
func missingText(missing []string) string {
	if len(missing) == 1 {
		return "no event type " + missing[0] + " exists. lift rejects " + missing[0] + " events until the type is registered, so nothing is counted on it."
	}
	return "no event types " + strings.Join(missing, ", ") + " exist. lift rejects such events until the types are registered, so nothing is counted on them."
}

// variantNames are the names given to variants, by key (variants without one are
// left out).
func variantNames(e *experiments.Experiment) map[string]string {
	names := map[string]string{}
	for _, v := range e.Variants {
		if v.Name != "" {
			names[v.Key] = v.Name
		}
	}
	return names
}

// transitionText explains each lifecycle action on its confirmation page.
var transitionText = map[string]struct{ Verb, Explain string }{
	"start": {"Start", "Users who match the targeting start getting variants and exposures are logged. Changing weights later skews results."},
	"pause": {"Pause", "Everyone gets the control variant until you start it again. Assignments are kept."},
	"stop":  {"Stop", "Everyone gets the control variant from now on. A stopped experiment cannot be restarted."},
}

func (d *Dashboard) experimentConfirm(c echo.Context) error {
	t, ok := transitionText[c.Param("action")]
	if !ok {
		return echo.ErrNotFound
	}
	e, err := d.loadExperiment(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, confirmView(d.page(c, "experiments", t.Verb+" "+e.Name), confirmation{
		Title:   t.Verb + " “" + e.Name + "”?",
		Explain: t.Explain,
		Action:  "/experiments/" + e.Key + "/" + c.Param("action"),
		Button:  t.Verb + " experiment",
		Danger:  c.Param("action") == "stop",
		Cancel:  "/experiments/" + e.Key,
	}))
}

func (d *Dashboard) experimentTransition(c echo.Context) error {
	if _, ok := transitionText[c.Param("action")]; !ok {
		return echo.ErrNotFound
	}
	if _, err := d.Config.Transition(c.Request().Context(), actor(c), c.Param("key"), c.Param("action")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/experiments/"+c.Param("key"))
}

// confirmation is a page asking before an action that changes what users see.
type confirmation struct {
	Title, Explain, Action, Button, Cancel string
	Danger                                 bool
}
