package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/segments"
	"github.com/liftlab/lift/segments/condition"
)

// segmentForm is the segment editor's view-model: an attribute segment's condition,
// or a behavioural segment's rule (builder or JSON) and membership TTL.
type segmentForm struct {
	Editing                           bool
	Kind                              string // "attribute" or "behavioral"
	Key, Name, Description, Condition string
	Rule                              behaviorRule
	TTL                               string
	// Attributes fill the attribute segment's "test a user" box; UserID the
	// behavioural one's.
	Attributes, UserID string
	// Summary says what the saved rule means, in words.
	Summary string
	// Versioning: the published version, the draft's (0: none) and whether the
	// segment was ever published; the editor shows the draft when there is one.
	Published, DraftVersion int
	NeverPublished          bool
	Versions                []segmentVersionRow
	Errors                  fieldErrors
}

// segmentVersionRow is one line of the versions card.
type segmentVersionRow struct {
	Version          int
	Created, By, Sum string
	Published, Draft bool
}

// Behavioral reports whether the form edits a behavioural segment.
func (f *segmentForm) Behavioral() bool { return f.Kind == "behavioral" }

// ClauseError returns the problems of one field of builder clause i ("within",
// "sequence[0].event"), as the service names them.
func (f *segmentForm) ClauseError(i int, field string) string {
	return f.Errors.For(f.Rule.path(i) + field)
}

// segmentRow is one line of the segments list.
type segmentRow struct {
	Key, Name, Kind, Definition string
	// Draft is "draft" for a segment never published, "draft vN" for a pending one.
	Draft string
	// Size is the number of members of a behavioural segment now, when known.
	Size string
}

// SegmentMembers is the decision process's live view of behavioural memberships:
// what /v1/decide sees.
type SegmentMembers interface {
	IsMember(segment, userID string) bool
	Size(segment string) int
}

// SegmentActivity counts a behavioural segment's entries and exits over the last hour.
type SegmentActivity interface {
	SegmentActivity(ctx context.Context, segment string) (entered, exited int64, err error)
}

func (d *Dashboard) segmentList(c echo.Context) error {
	list, err := listDocs[experiments.Segment](c.Request().Context(), d, experiments.KindSegment)
	if err != nil {
		return err
	}
	rows := make([]segmentRow, 0, len(list))
	for _, s := range list {
		r := segmentRow{Key: s.Key, Name: s.Name, Kind: s.Kind, Definition: compactJSON(s.Condition)}
		switch {
		case !s.IsPublished():
			r.Draft = "draft"
		case s.Draft != nil:
			r.Draft = "draft v" + strconv.Itoa(s.Draft.Version)
		}
		if s.Kind == "behavioral" {
			r.Definition = describeRule(s.Rule)
			if d.Members != nil {
				r.Size = count(float64(d.Members.Size(s.Key)))
			}
		}
		rows = append(rows, r)
	}
	return render(c, http.StatusOK, segmentListView(d.page(c, "segments", "Segments"), rows))
}

func (d *Dashboard) loadSegment(c echo.Context) (*experiments.Segment, error) {
	return getDoc[experiments.Segment](d, c, experiments.KindSegment)
}

func (d *Dashboard) segmentNew(c echo.Context) error {
	f := &segmentForm{Kind: "attribute", Condition: "{\n  \"country\": {\"$in\": [\"US\", \"CA\"]}\n}", Attributes: `{"country": "US"}`}
	if c.QueryParam("kind") == "behavioral" {
		f = &segmentForm{Kind: "behavioral", Rule: newBehaviorRule(), TTL: "30m"}
	}
	return render(c, http.StatusOK, segmentFormView(d.page(c, "segments", "New segment"), f, d.sizeOf(c, f)))
}

func (d *Dashboard) segmentEdit(c echo.Context) error {
	s, err := d.loadSegment(c)
	if err != nil {
		return err
	}
	f := &segmentForm{Editing: true, Key: s.Key, Name: s.Name, Description: s.Description, Attributes: "{}"}
	// A pending draft is what the editor continues; the published definition stays
	// in force until it is published.
	def := s
	if s.Draft != nil {
		def, f.DraftVersion = s.Draft, max(s.Draft.Version, 1)
	}
	f.Kind, f.Condition = def.Kind, prettyJSON(def.Condition)
	if def.Kind == "behavioral" {
		f.Rule, f.TTL, f.Summary = behaviorRuleFrom(def.Rule), windowInput(def.TTL), describeRule(def.Rule)
	}
	f.Published, f.NeverPublished = max(s.Version, 1), !s.IsPublished()
	if f.NeverPublished {
		f.DraftVersion = f.Published
	}
	if err := d.segmentVersions(c, f); err != nil {
		return err
	}
	return render(c, http.StatusOK, segmentFormView(d.page(c, "segments", s.Key), f, d.sizeOf(c, f)))
}

// segmentVersions fills the versions card, newest first.
func (d *Dashboard) segmentVersions(c echo.Context, f *segmentForm) error {
	vs, err := d.Config.SegmentVersions(c.Request().Context(), f.Key)
	if err != nil {
		return err
	}
	f.Versions = f.Versions[:0]
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		row := segmentVersionRow{Version: v.Version, Created: v.CreatedAt.UTC().Format("2 Jan 15:04"), By: v.CreatedBy, Published: v.Published, Draft: v.Draft}
		var def experiments.Segment
		if json.Unmarshal(v.Segment, &def) == nil {
			row.Sum = compactJSON(def.Condition)
			if def.Kind == "behavioral" {
				row.Sum = describeRule(def.Rule)
			}
		}
		f.Versions = append(f.Versions, row)
	}
	return nil
}

// segmentPublish publishes the draft, or with a version number republishes that
// earlier definition (a rollback).
func (d *Dashboard) segmentPublish(c echo.Context) error {
	version, _ := strconv.Atoi(c.FormValue("version"))
	if _, err := d.Config.PublishSegment(c.Request().Context(), actor(c), c.Param("key"), max(version, 0)); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/segments/"+c.Param("key"))
}

// segmentDiscard drops the draft; decisions never used it.
func (d *Dashboard) segmentDiscard(c echo.Context) error {
	if _, err := d.Config.DiscardSegmentDraft(c.Request().Context(), actor(c), c.Param("key")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/segments/"+c.Param("key"))
}

func (d *Dashboard) segmentCreate(c echo.Context) error { return d.saveSegment(c, false) }
func (d *Dashboard) segmentUpdate(c echo.Context) error { return d.saveSegment(c, true) }

// saveSegment handles the rule builder's buttons (re-render with the change) and
// saving; invalid input re-renders the form with every problem (422).
func (d *Dashboard) saveSegment(c echo.Context, editing bool) error {
	form, err := c.FormParams()
	if err != nil {
		return err
	}
	f := &segmentForm{Editing: editing, Kind: form.Get("kind"), Key: strings.TrimSpace(form.Get("key")), Name: strings.TrimSpace(form.Get("name")),
		Description: strings.TrimSpace(form.Get("description")), Condition: form.Get("condition"), Attributes: form.Get("attributes"),
		TTL: strings.TrimSpace(form.Get("ttl")), Rule: readBehaviorRule(form)}
	if f.Kind != "behavioral" {
		f.Kind = "attribute"
	}
	base := &experiments.Segment{Kind: f.Kind}
	if editing {
		if base, err = d.loadSegment(c); err != nil {
			return err
		}
		f.Key, f.Kind = base.Key, base.Kind
	}
	show := func(status int) error {
		title := "New segment"
		if editing {
			title = f.Key
			if base.Draft != nil {
				f.DraftVersion = max(base.Draft.Version, 1)
			}
			f.Published, f.NeverPublished = max(base.Version, 1), !base.IsPublished()
			if err := d.segmentVersions(c, f); err != nil {
				return err
			}
		}
		return render(c, status, segmentFormView(d.page(c, "segments", title), f, d.sizeOf(c, f)))
	}
	if f.Behavioral() {
		if ok, errs := f.Rule.apply(form.Get("op")); ok {
			f.Errors = errs
			return show(http.StatusOK)
		}
	}
	s := *base
	s.Key, s.Name, s.Description = f.Key, f.Name, f.Description
	s.Condition, s.Rule, s.TTL = nil, nil, ""
	// "Save as draft" previews the definition without touching decisions; saving
	// publishes it (the service keeps versions and the audit trail of both).
	s.Status, s.Draft, s.Version = experiments.SegmentPublished, nil, 0
	if form.Get("op") == "draft" {
		s.Status = experiments.SegmentDraft
	}
	var errs fieldErrors
	if f.Behavioral() {
		s.Rule, errs = f.Rule.document()
		if ttl, err := parseWindow(f.TTL); err != nil {
			errs = append(errs, derrors.FieldError{Field: "ttl", Message: err.Error()})
		} else {
			s.TTL = ttl
		}
	} else if cond := strings.TrimSpace(f.Condition); cond != "" {
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
		if errs, err = d.save(c, experiments.KindSegment, f.Key, editing, body); err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		f.Errors = errs
		return show(http.StatusUnprocessableEntity)
	}
	return c.Redirect(http.StatusSeeOther, "/segments/"+f.Key)
}

// segmentSize is a behavioural segment's size card: members now (as decisions see
// them) and the last hour's entries and exits.
type segmentSize struct {
	Key                      string
	Known                    bool
	Members, Entered, Exited string
	// Preview is the draft's membership as the engine computes it in preview, when
	// the segment has a behavioural draft.
	Preview string
	Problem string
}

// sizeOf measures a saved behavioural segment; others have no size.
func (d *Dashboard) sizeOf(c echo.Context, f *segmentForm) *segmentSize {
	if !f.Behavioral() || !f.Editing {
		return nil
	}
	sz := d.measure(c.Request().Context(), f.Key)
	if f.DraftVersion > 0 && d.Members != nil {
		sz.Preview = count(float64(d.Members.Size(f.Key + segments.PreviewSuffix)))
	}
	return sz
}

// activityTimeout bounds the wait for the hour's entries and exits, so a slow
// Postgres costs two dashes, not the page.
const activityTimeout = 2 * time.Second

func (d *Dashboard) measure(ctx context.Context, key string) *segmentSize {
	sz := &segmentSize{Key: key, Members: "—", Entered: "—", Exited: "—"}
	if d.Members != nil {
		sz.Known, sz.Members = true, count(float64(d.Members.Size(key)))
	}
	if d.Activity != nil {
		ctx, cancel := context.WithTimeout(ctx, activityTimeout)
		defer cancel()
		in, out, err := d.Activity.SegmentActivity(ctx, key)
		if err != nil {
			d.Log.Warn("segment activity failed", "err", err, "segment", key)
			sz.Problem = "The last hour's entries and exits could not be counted just now."
		} else {
			sz.Entered, sz.Exited = count(float64(in)), count(float64(out))
		}
	}
	return sz
}

// segmentSizeFragment answers the size card's periodic refresh.
func (d *Dashboard) segmentSizeFragment(c echo.Context) error {
	s, err := d.loadSegment(c)
	if err != nil {
		return err
	}
	if s.Kind != "behavioral" {
		return echo.NewHTTPError(http.StatusNotFound, "Only behavioural segments have a size: an attribute segment is decided per request.")
	}
	if c.QueryParam("compact") != "" {
		// The list's cell: the in-memory count alone, without the hour's activity.
		sz := &segmentSize{Members: "—"}
		if d.Members != nil {
			sz.Members = count(float64(d.Members.Size(s.Key)))
		}
		return render(c, http.StatusOK, segmentSizeCompact(sz))
	}
	sz := d.measure(c.Request().Context(), s.Key)
	if (s.Draft != nil && s.Draft.Kind == "behavioral" || !s.IsPublished()) && d.Members != nil {
		sz.Preview = count(float64(d.Members.Size(s.Key + segments.PreviewSuffix)))
	}
	return render(c, http.StatusOK, segmentSizeView(sz))
}

// memberResult is the answer of a behavioural segment's "check a user" box.
type memberResult struct {
	UserID string
	Member bool
	Error  string
}

// segmentCheck answers whether a user is in a behavioural segment now, from the
// memberships /v1/decide uses.
func (d *Dashboard) segmentCheck(c echo.Context) error {
	s, err := d.loadSegment(c)
	if err != nil {
		return err
	}
	r := memberResult{UserID: strings.TrimSpace(c.FormValue("user_id"))}
	switch {
	case s.Kind != "behavioral":
		r.Error = "Only behavioural segments have members; test an attribute segment with attributes."
	case r.UserID == "":
		r.Error = "Enter the user id your app sends as user_id."
	case d.Members == nil:
		r.Error = "Memberships are not available on this server (it does not serve decisions)."
	default:
		r.Member = d.Members.IsMember(s.Key, r.UserID)
	}
	if c.Request().Header.Get("HX-Request") != "" {
		return render(c, http.StatusOK, memberResultView(&r))
	}
	return render(c, http.StatusOK, memberResultPage(d.page(c, "segments", "Check a user"), s.Key, &r))
}

// testResult is the answer of the "test a user" box.
type testResult struct {
	Match bool
	Error string
}

// matchUser evaluates a condition against attributes, with the saved groups known to
// lift, exactly as decisions do.
func (d *Dashboard) matchUser(c echo.Context, conditionJSON, attributes string) testResult {
	cond, err := condition.ParseConditionJSON([]byte(conditionJSON))
	if err != nil {
		return testResult{Error: "Condition: " + err.Error()}
	}
	var attrs map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(attributes)))
	if err := dec.Decode(&attrs); err != nil {
		return testResult{Error: `Attributes must be a JSON object, such as {"country": "US"}.`}
	}
	groups := condition.SavedGroups{}
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

// cid names a field of builder clause i; sid one of step j of its sequence.
func cid(i int, field string) string { return "c" + strconv.Itoa(i) + "_" + field }

func sid(i, j int, field string) string { return cid(i, "s"+strconv.Itoa(j)+"_"+field) }

func segmentExplain(f *segmentForm) string {
	if f.Behavioral() {
		return "Behavioural segment: users whose recent events satisfy the rule, evaluated in event time as events arrive."
	}
	return "Attribute segment: users whose attributes match the condition, decided on every request."
}
