package dashboard

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/internal/derrors"
)

// Privacy is what the privacy settings page (/settings/privacy) shows and changes:
// how lift treats personal data (read-only: it comes from the environment), the
// retention of every ClickHouse table (admins may change it) and erasure requests
// (admins look a user up, confirm linked ids and start the erasure).
type Privacy interface {
	Overview(ctx context.Context) (gdpr.Overview, error)
	SetPolicy(ctx context.Context, actor, table string, months int) error
	List(ctx context.Context, limit int) ([]gdpr.Job, error)
	Links(ctx context.Context, userID string) (followed []string, unconfirmed []gdpr.Link, err error)
	Request(ctx context.Context, actor, userID string, include []string) (gdpr.Job, []gdpr.Link, error)
}

// PrivacyConfig is the privacy configuration lift started with, for display.
type PrivacyConfig struct {
	Pseudonymized   bool
	ConsentRequired bool
	ScrubPatterns   []string
	ScrubProperties []string
}

type retentionRow struct {
	Table, Months, Method, Rows, Oldest, Cutoff string
	Default                                     bool
	Value                                       int
}

type erasureRow struct {
	ID, Subject, Status, RequestedBy, RequestedAt, Finished string
}

// eraseForm is the erasure request form: a user looked up, with the ids erasure
// follows and the linked ids it follows only once confirmed.
type eraseForm struct {
	UserID      string
	Looked      bool // the user was looked up: show the ids and the confirm form
	Followed    []string
	Unconfirmed []linkRow
	Error       string
	Started     string // the id of the job just started
	NotFollowed int    // linked ids the started job does not follow
}

type linkRow struct {
	ID, Sources string
}

func linkRows(links []gdpr.Link) []linkRow {
	rows := make([]linkRow, len(links))
	for i, l := range links {
		rows[i] = linkRow{ID: l.ID, Sources: sourceNames(l.Sources)}
	}
	return rows
}

// sourceNames says who made a link, for the operator deciding whether to trust it.
func sourceNames(sources []string) string {
	names := make([]string, len(sources))
	for i, s := range sources {
		switch s {
		case "client":
			names[i] = "a client key (public)"
		case "unknown":
			names[i] = "an event stored before lift recorded sources"
		default:
			names[i] = s
		}
	}
	return strings.Join(names, ", ")
}

type privacyView struct {
	Config   PrivacyConfig
	Default  int
	Tables   []retentionRow
	Drops    []gdpr.Drop
	Erasures []erasureRow
	Erase    eraseForm
	Error    string // a failed change, shown above the table
	Saved    string // the table just changed
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2 Jan 2006")
}

func (d *Dashboard) privacyPage(c echo.Context) error {
	return d.showPrivacy(c, http.StatusOK, "", "")
}

func (d *Dashboard) showPrivacy(c echo.Context, status int, errMsg, saved string) error {
	return d.renderPrivacy(c, status, privacyView{Error: errMsg, Saved: saved})
}

func (d *Dashboard) renderPrivacy(c echo.Context, status int, v privacyView) error {
	p := d.page(c, "privacy", "Privacy")
	ctx := c.Request().Context()
	v.Config = d.PrivacyConfig
	o, err := d.Privacy.Overview(ctx)
	if err != nil {
		return err
	}
	v.Default, v.Drops = o.DefaultMonths, o.Drops
	for _, t := range o.Tables {
		r := retentionRow{Table: t.Table, Months: plural(t.Months, "month"), Default: t.Default, Value: t.Months,
			Rows: strconv.FormatUint(t.Rows, 10), Oldest: when(t.Oldest), Cutoff: when(t.Cutoff)}
		switch t.Method {
		case "partitions":
			r.Method = "drops partitions"
		case "rows":
			r.Method = "deletes rows by " + strings.Trim(t.TimeColumn, "`")
		default:
			r.Method = "not enforceable (no time column)"
		}
		v.Tables = append(v.Tables, r)
	}
	if p.IsAdmin() {
		jobs, err := d.Privacy.List(ctx, 20)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			r := erasureRow{ID: j.ID, Subject: j.Subject, Status: string(j.Status), RequestedBy: j.RequestedBy,
				RequestedAt: j.RequestedAt.UTC().Format("2 Jan 2006 15:04"), Finished: "—"}
			if j.FinishedAt != nil {
				r.Finished = j.FinishedAt.UTC().Format("2 Jan 2006 15:04")
			}
			v.Erasures = append(v.Erasures, r)
		}
	}
	return render(c, status, privacyPageView(p, v))
}

// privacyRetention saves one table's retention (admins); an empty value returns the
// table to the default.
func (d *Dashboard) privacyRetention(c echo.Context) error {
	table := c.Param("table")
	raw := strings.TrimSpace(c.FormValue("months"))
	months := 0
	if raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil {
			return d.showPrivacy(c, http.StatusUnprocessableEntity, table+": months must be a whole number", "")
		}
		months = n
	}
	o, err := d.Privacy.Overview(c.Request().Context())
	if err != nil {
		return err
	}
	known := false
	for _, t := range o.Tables {
		known = known || t.Table == table
	}
	if !known {
		return echo.ErrNotFound
	}
	if err := d.Privacy.SetPolicy(c.Request().Context(), actor(c), table, months); err != nil {
		var v *derrors.ValidationError
		if errors.As(err, &v) {
			return d.showPrivacy(c, http.StatusUnprocessableEntity, table+": "+v.Fields[0].Message, "")
		}
		return err
	}
	return d.showPrivacy(c, http.StatusOK, "", table)
}

// privacyErase is the erasure request form (admins): "lookup" lists the ids the
// erasure follows and the linked ids it follows only once confirmed; "erase" starts
// it with the ticked ones (include), which the audit log records by subject.
func (d *Dashboard) privacyErase(c echo.Context) error {
	ctx := c.Request().Context()
	f := eraseForm{UserID: strings.TrimSpace(c.FormValue("user_id"))}
	form, err := c.FormParams()
	if err != nil {
		return err
	}
	fail := func(err error) error {
		var v *derrors.ValidationError
		var conflict *derrors.ConflictError
		switch {
		case errors.As(err, &v):
			f.Error = v.Error()
		case errors.As(err, &conflict):
			f.Error = conflict.Reason
		default:
			return err
		}
		return d.renderPrivacy(c, http.StatusUnprocessableEntity, privacyView{Erase: f})
	}
	if c.FormValue("action") == "erase" {
		j, unconfirmed, err := d.Privacy.Request(ctx, actor(c), f.UserID, form["include"])
		if err != nil {
			return fail(err)
		}
		return d.renderPrivacy(c, http.StatusOK, privacyView{Erase: eraseForm{Started: j.ID, NotFollowed: len(unconfirmed)}})
	}
	followed, unconfirmed, err := d.Privacy.Links(ctx, f.UserID)
	if err != nil {
		return fail(err)
	}
	f.Looked, f.Followed, f.Unconfirmed = true, followed, linkRows(unconfirmed)
	return d.renderPrivacy(c, http.StatusOK, privacyView{Erase: f})
}
