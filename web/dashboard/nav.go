package dashboard

import "github.com/liftlab/lift/web/auth"

// navItem is one entry of the main navigation. A page sets Page.Section to its
// Section to show as the current one.
type navItem struct {
	Section, Href, Label string
	Icon                 string // a name in navIcons
	Need                 auth.Role
}

// navGroup is a titled group of entries.
type navGroup struct {
	Title string
	Items []navItem
}

// navigation is the dashboard's menu. A new area (privacy settings, operations) adds
// its entries here, in the group where people will look for it, or a group of its
// own; the layout draws whatever is listed, hiding entries the user's role may not
// open.
var navigation = []navGroup{
	{"Experiment", []navItem{
		{"experiments", "/experiments", "Experiments", "flask", auth.Viewer},
		{"flags", "/flags", "Feature flags", "flag", auth.Viewer},
	}},
	{"Audience", []navItem{
		{"segments", "/segments", "Segments", "people", auth.Viewer},
		{"features", "/features", "Features", "pulse", auth.Viewer},
		{"saved-groups", "/saved-groups", "Saved groups", "list", auth.Viewer},
	}},
	{"Data", []navItem{
		{"events", "/events", "Live events", "pulse", auth.Viewer},
		{"event-types", "/event-types", "Event types", "braces", auth.Viewer},
	}},
	{"Settings", []navItem{
		{"keys", "/keys", "API keys", "key", auth.Viewer},
		{"users", "/users", "Users", "user", auth.Admin},
		{"audit", "/audit", "Audit log", "clock", auth.Viewer},
		{"privacy", "/settings/privacy", "Privacy", "shield", auth.Viewer},
	}},
}

// navFor is the navigation as the page's user may see it.
func navFor(p Page) []navGroup {
	out := make([]navGroup, 0, len(navigation))
	for _, g := range navigation {
		var items []navItem
		for _, it := range g.Items {
			if p.User.Role.Allows(it.Need) {
				items = append(items, it)
			}
		}
		if len(items) > 0 {
			out = append(out, navGroup{g.Title, items})
		}
	}
	return out
}

// navIcons are 16×16 line icons (SVG path data, stroked), drawn for lift.
var navIcons = map[string]string{
	"flask":  "M6 2h4M7 2v4L3 13a1 1 0 0 0 1 1.5h8A1 1 0 0 0 13 13L9 6V2M5 10h6",
	"flag":   "M3.5 14.5V2M3.5 2.5h8l-2 3 2 3h-8",
	"people": "M6 7.5a2.5 2.5 0 1 0 0-5 2.5 2.5 0 0 0 0 5zM1.5 14c0-2.5 2-4 4.5-4s4.5 1.5 4.5 4M11 3a2.5 2.5 0 0 1 0 4.5M12.5 10c1.3.5 2 1.8 2 4",
	"list":   "M5.5 4h8M5.5 8h8M5.5 12h8M2.5 4h.01M2.5 8h.01M2.5 12h.01",
	"pulse":  "M1.5 8h3l2-5 3 10 2-5h3",
	"braces": "M5.5 2.5c-1.5 0-2 .5-2 2v1.5c0 1-.5 2-1.5 2 1 0 1.5 1 1.5 2v1.5c0 1.5.5 2 2 2M10.5 2.5c1.5 0 2 .5 2 2v1.5c0 1 .5 2 1.5 2-1 0-1.5 1-1.5 2v1.5c0 1.5-.5 2-2 2",
	"key":    "M9.5 9.5a4 4 0 1 0-3-3L1.5 11.5v3h3V13h1.5v-1.5H7.5l2-2zM11 5h.01",
	"user":   "M8 8a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM2.5 14.5c0-3 2.5-5 5.5-5s5.5 2 5.5 5",
	"clock":  "M8 14.5a6.5 6.5 0 1 0 0-13 6.5 6.5 0 0 0 0 13zM8 4.5V8l2.5 1.5",
	"shield": "M8 1.5 13.5 3.5v4c0 3.3-2.3 5.8-5.5 7-3.2-1.2-5.5-3.7-5.5-7v-4zM5.8 8l1.6 1.6L10.5 6.5",
	"logout": "M6.5 2.5h-3v11h3M10 5l3 3-3 3M13 8H6",
}

// initial is the first letter of an e-mail address, for the account badge.
func initial(email string) string {
	for _, r := range email {
		return string(r)
	}
	return "?"
}
