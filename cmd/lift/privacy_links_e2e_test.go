package main

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/testenv"
	liftclient "github.com/liftlab/lift/web/client"
	"github.com/liftlab/lift/web/client/amqpclient"
)

type linkResp struct {
	ID      string
	Sources []string
}

type exportResp struct {
	IDs              []string
	UnconfirmedLinks []linkResp `json:"unconfirmed_links"`
	ClickHouse       map[string][]map[string]any
}

// eventsOf returns the user ids of the export's events rows.
func (x exportResp) eventsOf() map[string]int {
	out := map[string]int{}
	for _, r := range x.ClickHouse["events"] {
		out[r["user_id"].(string)]++
	}
	return out
}

// TestIdentifyLinksEndToEnd: $identify links an anonymous id to a user. Client keys
// are public, so a link one sent (mallory claiming the victim's id) is neither
// exported nor erased with the user: it is listed for the operator, who may confirm
// it (include=, audited by keyed digest). The same link sent with a server key, or
// published to RabbitMQ by a backend, is followed.
func TestIdentifyLinksEndToEnd(t *testing.T) {
	t.Parallel()
	pf := newPrivacyFixture(t)
	pf.start(t)
	ctx := context.Background()
	P := pf.pseud.Pseudonymize
	identify := func(user, anon string) string {
		return `{"events":[{"type":"$identify","user_id":"` + user + `","properties":{"anonymous_id":"` + anon + `"}}]}`
	}
	pf.client.want(202, "POST", "/v1/events", `{"events":[{"type":"product_view","user_id":"victim"},
		{"type":"purchase","user_id":"victim","value":99}]}`, nil)
	for _, anon := range []string{"carol-anon", "dave-anon", "eve-anon"} {
		pf.client.want(202, "POST", "/v1/events", `{"events":[{"type":"page_view","user_id":"`+anon+`"}]}`, nil)
	}
	pf.client.want(202, "POST", "/v1/events", identify("mallory", "victim"), nil) // the forgery
	pf.client.want(202, "POST", "/v1/events", identify("eve", "eve-anon"), nil)   // a real visitor, through lift.js
	pf.server.want(202, "POST", "/v1/events", identify("carol", "carol-anon"), nil)
	pub, err := amqpclient.Dial(ctx, pf.env["LIFT_AMQP_URL"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Send(ctx, []liftclient.Event{{Type: "$identify", UserID: "dave", Properties: map[string]any{"anonymous_id": "dave-anon"}}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the linked users' events in ClickHouse", func() bool {
		return pf.userRows(t, P("victim"))["events"] == 2 && pf.userRows(t, P("mallory"), P("eve"), P("carol"), "dave", P("dave"))["events"] == 4 &&
			pf.userRows(t, P("carol-anon"), P("dave-anon"), P("eve-anon"))["events"] == 3
	})

	exportOf := func(user, query string) exportResp {
		var x exportResp
		pf.server.want(200, "GET", "/api/v1/users/"+url.PathEscape(user)+"/export"+query, "", &x)
		return x
	}
	// The forged link is listed, not followed.
	x := exportOf("mallory", "")
	if !slices.Equal(x.IDs, []string{"mallory", P("mallory")}) || len(x.UnconfirmedLinks) != 1 ||
		x.UnconfirmedLinks[0].ID != P("victim") || !slices.Equal(x.UnconfirmedLinks[0].Sources, []string{"client"}) {
		t.Errorf("export of mallory: ids %v, unconfirmed links %+v", x.IDs, x.UnconfirmedLinks)
	}
	if got := x.eventsOf(); got[P("victim")] != 0 || got[P("mallory")] != 1 {
		t.Errorf("export of mallory holds events of %v", got)
	}
	// Confirmed, it is followed; an id that is not linked is refused.
	x = exportOf("mallory", "?include="+url.QueryEscape(P("victim")))
	if got := x.eventsOf(); got[P("victim")] != 2 || len(x.UnconfirmedLinks) != 0 {
		t.Errorf("export of mallory with the link confirmed: events %v, unconfirmed %+v", got, x.UnconfirmedLinks)
	}
	var bad struct {
		Fields []struct{ Field, Message string }
	}
	pf.server.want(400, "GET", "/api/v1/users/mallory/export?include=nobody", "", &bad)
	if len(bad.Fields) != 1 || bad.Fields[0].Field != "include" {
		t.Errorf("include of an id not linked: %+v", bad)
	}
	// Links from a server key and from a backend on RabbitMQ are followed.
	for user, anon := range map[string]string{"carol": "carol-anon", "dave": "dave-anon"} {
		x := exportOf(user, "")
		if !slices.Contains(x.IDs, P(anon)) || x.eventsOf()[P(anon)] != 1 || len(x.UnconfirmedLinks) != 0 {
			t.Errorf("export of %s: ids %v, events %v, unconfirmed %+v", user, x.IDs, x.eventsOf(), x.UnconfirmedLinks)
		}
	}
	// Exports are audited by subject; the confirmed link too, by its digest.
	var audit struct {
		Items []struct {
			Actor, Key string
			After      map[string]any
		}
	}
	pf.server.want(200, "GET", "/api/v1/audit?entity=export", "", &audit)
	confirmedExports := 0
	for _, a := range audit.Items {
		links, _ := a.After["confirmed_links"].([]any)
		if len(links) == 1 && strings.HasPrefix(links[0].(string), "sub_") && strings.HasPrefix(a.Key, "sub_") {
			confirmedExports++
		}
	}
	if len(audit.Items) != 4 || confirmedExports != 1 {
		t.Errorf("export audit entries %+v", audit.Items)
	}

	// Erasure: mallory's forged link is listed and not followed; carol's is; eve's
	// is followed once confirmed.
	erase := func(user, query string) (jobResp, []linkResp) {
		var r struct {
			jobResp
			UnconfirmedLinks []linkResp `json:"unconfirmed_links"`
		}
		pf.server.want(202, "DELETE", "/api/v1/users/"+url.PathEscape(user)+query, "", &r)
		return r.jobResp, r.UnconfirmedLinks
	}
	mallory, unconfirmed := erase("mallory", "")
	if len(unconfirmed) != 1 || unconfirmed[0].ID != P("victim") {
		t.Errorf("erasure of mallory lists %+v", unconfirmed)
	}
	carol, _ := erase("carol", "")
	eve, unconfirmed := erase("eve", "?include="+url.QueryEscape(P("eve-anon")))
	if len(unconfirmed) != 0 {
		t.Errorf("erasure of eve with the link confirmed lists %+v", unconfirmed)
	}
	for _, j := range []*jobResp{&mallory, &carol, &eve} {
		testenv.Eventually(t, 90*time.Second, "the erasure job to finish", func() bool {
			pf.server.want(200, "GET", j.URL, "", j)
			return j.Status == "done"
		})
	}
	if n := pf.userRows(t, P("victim"))["events"]; n != 2 {
		t.Errorf("the victim has %d events after mallory's erasure, want 2", n)
	}
	for _, id := range []string{"mallory", "carol", "carol-anon", "eve", "eve-anon"} {
		if n := pf.userRows(t, id, P(id))["events"]; n != 0 {
			t.Errorf("%s has %d events after the erasure", id, n)
		}
	}
	if n := pf.userRows(t, P("dave-anon"))["events"]; n != 1 {
		t.Errorf("dave-anon has %d events, want 1 (only exported)", n)
	}
	if !strings.Contains(mallory.Steps[0].Detail, "1 linked ids not followed") {
		t.Errorf("mallory's resolve step: %s", mallory.Steps[0].Detail)
	}
	// The request's audit entry names eve's confirmed link by digest only.
	var after string
	if err := pf.pg.QueryRow(ctx, "SELECT after::text FROM audit_log WHERE entity = 'erasure' AND action = 'request' AND entity_key = $1", eve.ID).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(after, "eve-anon") || strings.Contains(after, P("eve-anon")) || strings.Contains(after, P("eve")) || !strings.Contains(after, `"confirmed_links": ["sub_`) {
		t.Errorf("request audit entry %s", after)
	}
}
