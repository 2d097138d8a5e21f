// Package dashboard is lift's web dashboard: server-rendered pages (templ, with htmx
// for in-place updates) for experiments, flags, segments, API keys, users and the
// audit log. Every change goes through experiments.Service, so the dashboard validates
// and audits exactly like the management API.
package dashboard

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/web/auth"
	"github.com/liftlab/lift/web/session"
	"github.com/liftlab/lift/web/static"
)

// Users is what the users page needs.
type Users interface {
	auth.UserStore
	auth.UserLister
}

// Deps is what the dashboard needs from the rest of lift.
type Deps struct {
	Log      *slog.Logger
	Config   experiments.Manager
	Keys     auth.KeyStore
	Users    Users
	Sessions *session.Manager
	// Results, when set, fills the experiment page's results section and the list's
	// headlines; without it those show a placeholder.
	Results ResultsReader
	// Bandits, when set, fills the bandit section of bandit experiments' pages.
	Bandits BanditReporter
	// EventTypes, when set, lists the custom event types on /event-types (and lets
	// the experiment form warn about a goal no event type has); TypeCreator, when
	// set, registers new ones from there.
	EventTypes  EventTypes
	TypeCreator EventTypeCreator
	// Privacy, when set, serves the privacy settings page (/settings/privacy), which
	// shows PrivacyConfig.
	Privacy       Privacy
	PrivacyConfig PrivacyConfig
	// Members, when set, gives behavioural segments' sizes and answers "check a
	// user"; Activity adds the last hour's entries and exits.
	Members  SegmentMembers
	Activity SegmentActivity
	// Feed, when set, fills the live view of recent events, exposures and dead
	// letters; DeadQueue adds how many messages lift.dead holds.
	Feed      EventFeed
	DeadQueue DeadQueue
	// ResultsTimeout bounds the experiment page's results query (0: 5 s); past it
	// the page says results are unavailable instead of hanging.
	ResultsTimeout time.Duration
}

// Dashboard serves the pages.
type Dashboard struct {
	Deps
	cache *resultsCache
	since *runningSince
}

// New returns the dashboard; Register adds its routes, RefreshResults keeps the
// experiments list's results fresh.
func New(d Deps) *Dashboard {
	db := &Dashboard{Deps: d, since: newRunningSince()}
	if d.Results != nil {
		db.cache = newResultsCache(d.Results)
	}
	return db
}

// Register adds the dashboard's routes to e.
func (d *Dashboard) Register(e *echo.Echo) {
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", staticHandler())))
	// Browsers ask every site for it; without it each page logs a 404.
	e.GET("/favicon.ico", favicon())
	g := e.Group("", d.htmlErrors, session.CSRF(d.csrfFailed))
	g.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/experiments") })
	g.GET("/login", d.loginPage)
	g.POST("/login", d.login)
	g.POST("/logout", d.logout)

	view := g.Group("", d.requireRole(auth.Viewer))
	edit := g.Group("", d.requireRole(auth.Editor))
	admin := g.Group("", d.requireRole(auth.Admin))

	view.GET("/experiments", d.experimentList)
	edit.GET("/experiments/new", d.experimentNew)
	edit.POST("/experiments", d.experimentCreate)
	view.GET("/experiments/:key", d.experimentDetail)
	edit.GET("/experiments/:key/edit", d.experimentEdit)
	edit.POST("/experiments/:key", d.experimentUpdate)
	edit.GET("/experiments/:key/delete", d.deleteConfirm(experiments.KindExperiment))
	edit.POST("/experiments/:key/delete", d.deleteDoc(experiments.KindExperiment))
	edit.GET("/experiments/:key/winner", d.winnerConfirm)
	edit.POST("/experiments/:key/winner", d.winnerSet)
	edit.GET("/experiments/:key/:action", d.experimentConfirm)
	edit.POST("/experiments/:key/:action", d.experimentTransition)

	view.GET("/flags", d.flagList)
	edit.GET("/flags/new", d.flagNew)
	edit.POST("/flags", d.flagCreate)
	view.GET("/flags/:key", d.flagEdit)
	edit.POST("/flags/:key", d.flagUpdate)
	edit.GET("/flags/:key/toggle", d.flagToggleConfirm)
	edit.POST("/flags/:key/toggle", d.flagToggle)
	edit.GET("/flags/:key/delete", d.deleteConfirm(experiments.KindFlag))
	edit.POST("/flags/:key/delete", d.deleteDoc(experiments.KindFlag))

	view.GET("/segments", d.segmentList)
	edit.GET("/segments/new", d.segmentNew)
	edit.POST("/segments", d.segmentCreate)
	view.POST("/segments/test", d.segmentTest)
	view.GET("/segments/:key", d.segmentEdit)
	view.GET("/segments/:key/size", d.segmentSizeFragment)
	view.POST("/segments/:key/check", d.segmentCheck)
	edit.POST("/segments/:key/publish", d.segmentPublish)
	edit.POST("/segments/:key/discard", d.segmentDiscard)
	edit.POST("/segments/:key", d.segmentUpdate)
	edit.GET("/segments/:key/delete", d.deleteConfirm(experiments.KindSegment))
	edit.POST("/segments/:key/delete", d.deleteDoc(experiments.KindSegment))

	view.GET("/features", d.featureList)
	edit.GET("/features/new", d.featureNew)
	edit.POST("/features", d.featureCreate)
	view.GET("/features/:key", d.featureEdit)
	edit.POST("/features/:key", d.featureUpdate)
	edit.GET("/features/:key/delete", d.deleteConfirm(experiments.KindFeature))
	edit.POST("/features/:key/delete", d.deleteDoc(experiments.KindFeature))

	view.GET("/saved-groups", d.groupList)
	edit.GET("/saved-groups/new", d.groupNew)
	edit.POST("/saved-groups", d.groupCreate)
	view.GET("/saved-groups/:key", d.groupEdit)
	edit.POST("/saved-groups/:key", d.groupUpdate)
	edit.GET("/saved-groups/:key/delete", d.deleteConfirm(experiments.KindSavedGroup))
	edit.POST("/saved-groups/:key/delete", d.deleteDoc(experiments.KindSavedGroup))

	view.GET("/events", d.liveEvents)
	view.GET("/event-types", d.eventTypeList)
	edit.GET("/event-types/new", d.eventTypeNew)
	edit.POST("/event-types", d.eventTypeCreate)
	view.GET("/event-types/:name", d.eventTypeDetail)

	if d.Privacy != nil {
		view.GET("/settings/privacy", d.privacyPage)
		admin.POST("/settings/privacy/retention/:table", d.privacyRetention)
		admin.POST("/settings/privacy/erasure", d.privacyErase)
	}

	view.GET("/keys", d.keyList)
	admin.POST("/keys", d.keyCreate)
	admin.GET("/keys/:id/revoke", d.keyRevokeConfirm)
	admin.POST("/keys/:id/revoke", d.keyRevoke)

	admin.GET("/users", d.userList)
	admin.POST("/users", d.userCreate)

	view.GET("/audit", d.auditList)
}

// staticHandler serves the embedded assets; they change only with the binary, so
// browsers may keep them for a day.
func staticHandler() http.Handler {
	files := http.FileServerFS(static.FS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}

// favicon serves lift's icon, which every page links and browsers ask for at
// /favicon.ico anyway.
func favicon() echo.HandlerFunc {
	icon, err := static.FS.ReadFile("favicon.ico")
	if err != nil {
		panic("dashboard: favicon.ico is not embedded: " + err.Error())
	}
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=86400")
		return c.Blob(http.StatusOK, "image/x-icon", icon)
	}
}

// Page is what every page's layout needs.
type Page struct {
	Title   string
	Section string
	User    auth.User
	CSRF    string
	// Flash is the message the previous request left ("Flag saved."), if any.
	Flash *flash
}

// CanEdit reports whether the user may change experiments, flags and segments.
func (p Page) CanEdit() bool { return p.User.Role.Allows(auth.Editor) }

// IsAdmin reports whether the user may manage keys and users.
func (p Page) IsAdmin() bool { return p.User.Role.Allows(auth.Admin) }

func (d *Dashboard) page(c echo.Context, section, title string) Page {
	u, _ := c.Get(userKey).(auth.User)
	return Page{Title: title, Section: section, User: u, CSRF: session.CSRFToken(c), Flash: takeFlash(c)}
}

const userKey = "lift.dashboard.user"

// requireRole sends signed-out visitors to the login page (coming back afterwards) and
// refuses users whose role is too low.
func (d *Dashboard) requireRole(need auth.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			u, ok, err := d.Sessions.User(c)
			if err != nil {
				return err
			}
			if !ok {
				target := "/login?next=" + url.QueryEscape(c.Request().URL.RequestURI())
				if c.Request().Header.Get("HX-Request") != "" {
					c.Response().Header().Set("HX-Redirect", target)
					return c.NoContent(http.StatusUnauthorized)
				}
				return c.Redirect(http.StatusSeeOther, target)
			}
			c.Set(userKey, u)
			if !u.Role.Allows(need) {
				return echo.NewHTTPError(http.StatusForbidden, "Your role ("+string(u.Role)+") cannot do this; it needs "+string(need)+".")
			}
			return next(c)
		}
	}
}

// render writes a component as a full HTML answer. It renders into a buffer first so
// a template error becomes an error page rather than half a page.
func render(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// htmlErrors turns errors from dashboard handlers into HTML error pages (the JSON
// error handler of the API would show a browser raw JSON), with the status the API
// answers for the same error: derrors' one table.
func (d *Dashboard) htmlErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err == nil || c.Response().Committed {
			return err
		}
		status := derrors.HTTPStatus(err)
		msg := http.StatusText(status)
		var he *echo.HTTPError
		var conflict *derrors.ConflictError
		var invalid *derrors.ValidationError
		switch {
		case errors.As(err, &invalid):
			msg = "The stored document is no longer valid: " + problemsText(invalid.Fields) + ". Fix it in its editor."
		case errors.As(err, &he):
			status, msg = he.Code, http.StatusText(he.Code)
			if s, ok := he.Message.(string); ok {
				msg = s
			}
		case errors.Is(err, derrors.ErrNotFound):
			msg = "There is nothing here. It may have been deleted."
		case errors.As(err, &conflict):
			msg = conflict.Reason
		case status >= 500:
			msg = "Something went wrong on our side. The error was logged."
		}
		if status >= 500 {
			d.Log.ErrorContext(c.Request().Context(), "dashboard request failed", "err", err, "method", c.Request().Method, "path", c.Path())
		}
		return render(c, status, errorPage(d.page(c, "", http.StatusText(status)), status, msg))
	}
}

// csrfFailed explains a refused form instead of answering with bare JSON.
func (d *Dashboard) csrfFailed(err error, c echo.Context) error {
	return echo.NewHTTPError(http.StatusForbidden, "This form expired or did not come from lift (missing or wrong CSRF token). Reload the page and try again.")
}

// actor names the signed-in user in the audit log.
func actor(c echo.Context) string {
	u, _ := c.Get(userKey).(auth.User)
	return "user:" + u.Email
}

// fieldErrors are the problems of a submitted form, by field path as the service
// names them ("variants[1].weight").
type fieldErrors []derrors.FieldError

// For returns the messages for a field and anything below it ("targeting" also gets
// "targeting.country.$in").
func (f fieldErrors) For(field string) string {
	out := ""
	for _, e := range f {
		if e.Field == field || len(e.Field) > len(field) && e.Field[:len(field)] == field && (e.Field[len(field)] == '.' || e.Field[len(field)] == '[') {
			if out != "" {
				out += "; "
			}
			out += e.Message
		}
	}
	return out
}

// save creates a document from a form, or replaces it when editing, and returns the
// service's validation errors as the form's field errors.
func (d *Dashboard) save(c echo.Context, kind experiments.Kind, key string, editing bool, body []byte) (fieldErrors, error) {
	var err error
	if editing {
		_, err = d.Config.Replace(c.Request().Context(), actor(c), kind, key, body)
	} else {
		_, err = d.Config.Create(c.Request().Context(), actor(c), kind, body)
	}
	return asFieldErrors(err)
}

// asFieldErrors extracts the field errors of a validation error; other errors are
// returned as they are, to become an error page.
func asFieldErrors(err error) (fieldErrors, error) {
	var v *derrors.ValidationError
	var conflict *derrors.ConflictError
	switch {
	case errors.As(err, &v):
		return v.Fields, nil
	case errors.As(err, &conflict):
		return fieldErrors{{Field: "key", Message: conflict.Reason}}, nil
	case errors.Is(err, derrors.ErrConflict):
		return fieldErrors{{Field: "key", Message: "is already used by another document"}}, nil
	}
	return nil, err
}
