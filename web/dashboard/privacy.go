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
)

// Privacy is what the privacy settings page (/settings/privacy) shows and changes:
// how lift treats personal data (read-only: it comes from the environment), the
// retention of every ClickHouse table (admins may change it) and erasure requests.
type Privacy interface {
	Overview(ctx context.Context) (gdpr.Overview, error)
	SetPolicy(ctx context.Context, actor, table string, months int) error
	List(ctx context.Context, limit int) ([]gdpr.Job, error)
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

type privacyView struct {
	Config   PrivacyConfig
	Default  int
	Tables   []retentionRow
	Drops    []gdpr.Drop
	Erasures []erasureRow
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
	p := d.page(c, "privacy", "Privacy")
	ctx := c.Request().Context()
	v := privacyView{Config: d.PrivacyConfig, Error: errMsg, Saved: saved}
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
		var v *gdpr.ValidationError
		if errors.As(err, &v) {
			return d.showPrivacy(c, http.StatusUnprocessableEntity, table+": "+v.Message, "")
		}
		return err
	}
	return d.showPrivacy(c, http.StatusOK, "", table)
}
