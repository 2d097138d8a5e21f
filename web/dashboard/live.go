package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/ingest"
)

// EventFeed reads the newest stored events, exposures and dead letters for the live
// view.
type EventFeed interface {
	RecentEvents(ctx context.Context, f ingest.FeedFilter) ([]ingest.Event, error)
	RecentExposures(ctx context.Context, f ingest.FeedFilter) ([]ingest.Event, error)
	RecentDeadLetters(ctx context.Context, limit int) ([]ingest.DeadLetter, error)
}

// DeadQueue reports how many messages the dead-letter queue holds now: the
// authoritative count, whatever the recorded copies say.
type DeadQueue interface {
	DeadQueueDepth(ctx context.Context) (int, error)
}

// feedTimeout bounds each read of the live view, so a slow ClickHouse or broker costs
// a message, not the page.
const feedTimeout = 3 * time.Second

// liveFilter is the live view's tab and filters, as in the query string.
type liveFilter struct {
	Tab                      string // events, exposures or dead
	Type, UserID, Experiment string
	Paused                   bool
}

// Query is the filter as a query string, with extra pairs added.
func (f liveFilter) Query(extra ...string) string {
	q := url.Values{}
	q.Set("tab", f.Tab)
	for k, v := range map[string]string{"type": f.Type, "user": f.UserID, "experiment": f.Experiment} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Paused {
		q.Set("live", "0")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return "/events?" + q.Encode()
}

// With is the filter on another tab, or with a user's events only.
func (f liveFilter) With(key, value string) string {
	g := f
	switch key {
	case "tab":
		g = liveFilter{Tab: value, Paused: f.Paused}
	case "user":
		g.UserID = value
	case "experiment":
		g.Experiment = value
	case "type":
		g.Type = value
	case "live":
		g.Paused = value == "0"
	}
	return g.Query()
}

// liveView is what the live page shows.
type liveView struct {
	Filter     liveFilter
	Types      []string
	Events     []eventRow
	Dead       []deadRow
	Problem    string
	Available  bool
	DeadDepth  string // messages in lift.dead now ("" when unknown)
	DepthError string
	Updated    string
}

type eventRow struct {
	Received, Ago, EventTime, Type, UserID, Value, Properties string
	Experiment, Variant, Segment, Probability                 string
}

type deadRow struct {
	At, Ago, Reason, RoutingKey, UserID, Body string
	Truncated                                 bool
}

// liveRows is how many events or exposures the live view shows.
const liveRows = 30

// deadBodyShown is how much of a dead letter's body the page shows.
const deadBodyShown = 2000

func (d *Dashboard) liveEvents(c echo.Context) error {
	f := liveFilter{Tab: c.QueryParam("tab"), Type: strings.TrimSpace(c.QueryParam("type")), UserID: strings.TrimSpace(c.QueryParam("user")),
		Experiment: strings.TrimSpace(c.QueryParam("experiment")), Paused: c.QueryParam("live") == "0"}
	switch f.Tab {
	case "exposures", "dead":
	default:
		f.Tab = "events"
	}
	v := d.readFeed(c.Request().Context(), f)
	if c.QueryParam("fragment") != "" {
		return render(c, http.StatusOK, liveFeed(v))
	}
	v.Types = d.eventTypeNames(c.Request().Context())
	return render(c, http.StatusOK, livePage(d.page(c, "events", "Live events"), v))
}

func (d *Dashboard) readFeed(ctx context.Context, f liveFilter) *liveView {
	v := &liveView{Filter: f, Available: d.Feed != nil, Updated: time.Now().UTC().Format("15:04:05 UTC")}
	if d.Feed == nil {
		return v
	}
	ctx, cancel := context.WithTimeout(ctx, feedTimeout)
	defer cancel()
	now := time.Now()
	switch f.Tab {
	case "dead":
		if d.DeadQueue != nil {
			if n, err := d.DeadQueue.DeadQueueDepth(ctx); err != nil {
				d.Log.Warn("dead-letter queue depth failed", "err", err)
				v.DepthError = "RabbitMQ did not say how many messages lift.dead holds."
			} else {
				v.DeadDepth = count(float64(n))
			}
		}
		letters, err := d.Feed.RecentDeadLetters(ctx, 50)
		if err != nil {
			d.Log.Warn("recent dead letters failed", "err", err)
			v.Problem = "The recorded dead letters cannot be read right now (ClickHouse did not answer). Try again in a minute."
		}
		for _, l := range letters {
			r := deadRow{At: clock(l.At), Ago: ago(now.Sub(l.At)), Reason: l.Reason, RoutingKey: l.RoutingKey, UserID: l.UserID, Body: string(l.Body)}
			if len(r.Body) > deadBodyShown {
				r.Body, r.Truncated = r.Body[:deadBodyShown], true
			}
			v.Dead = append(v.Dead, r)
		}
	default:
		read := d.Feed.RecentEvents
		if f.Tab == "exposures" {
			read = d.Feed.RecentExposures
		}
		events, err := read(ctx, ingest.FeedFilter{Type: f.Type, UserID: f.UserID, Experiment: f.Experiment, Limit: liveRows})
		if err != nil {
			d.Log.Warn("recent events failed", "err", err, "tab", f.Tab)
			v.Problem = "Recent events cannot be read right now (ClickHouse did not answer). Try again in a minute."
		}
		for _, e := range events {
			r := eventRow{Received: clock(e.ReceivedAt), Ago: ago(now.Sub(e.ReceivedAt)), Type: e.Type, UserID: e.UserID, Properties: compactJSON(e.Properties)}
			if e.Value != 0 {
				r.Value = trimmedDecimal(e.Value)
			}
			if d := e.ReceivedAt.Sub(e.Timestamp); d > time.Minute || d < -time.Minute {
				r.EventTime = clock(e.Timestamp)
			}
			if x := e.Exposure; x != nil {
				r.Experiment, r.Variant, r.Segment, r.Probability = x.Experiment, x.Variant, x.Segment, percent(x.AssignmentProbability)
			}
			if r.Properties == "{}" {
				r.Properties = ""
			}
			v.Events = append(v.Events, r)
		}
	}
	return v
}

// eventTypeNames lists the built-in event types and the custom ones, for the filter.
func (d *Dashboard) eventTypeNames(ctx context.Context) []string {
	names := []string{ingest.TypePageView, ingest.TypeProductView, ingest.TypeClick, ingest.TypeAddToCart, ingest.TypeRemoveFromCart, ingest.TypePurchase}
	if d.EventTypes != nil {
		if types, err := d.EventTypes.LatestTypes(ctx); err == nil {
			for _, t := range types {
				names = append(names, t.Name)
			}
		}
	}
	return names
}

// clock shows a time of the last day or so: the time of day, with the date when it
// is not today.
func clock(t time.Time) string {
	t = t.UTC()
	if y, m, d := t.Date(); y == time.Now().UTC().Year() && m == time.Now().UTC().Month() && d == time.Now().UTC().Day() {
		return t.Format("15:04:05")
	}
	return t.Format("Jan 2 15:04:05")
}

func liveRefresh() string { return "every " + strconv.Itoa(liveEverySeconds) + "s" }

// liveEverySeconds is how often the live view refreshes itself.
const liveEverySeconds = 3
