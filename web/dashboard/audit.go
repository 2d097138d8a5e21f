package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiments"
)

// change is one difference between the documents before and after an audited change.
type change struct {
	Path, Before, After string
}

// diff compares two JSON documents leaf by leaf, so a reviewer sees "variants[1].weight
// 0.5 → 0.3" rather than two whole documents.
func diff(before, after json.RawMessage) []change {
	a, b := map[string]string{}, map[string]string{}
	flatten(before, "", a)
	flatten(after, "", b)
	paths := map[string]bool{}
	for p := range a {
		paths[p] = true
	}
	for p := range b {
		paths[p] = true
	}
	var out []change
	for p := range paths {
		if a[p] != b[p] {
			out = append(out, change{Path: p, Before: a[p], After: b[p]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func flatten(raw json.RawMessage, prefix string, out map[string]string) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		out[prefix] = string(raw)
		return
	}
	flattenValue(v, prefix, out)
}

func flattenValue(v any, prefix string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			out[prefix] = "{}"
		}
		for k, child := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flattenValue(child, p, out)
		}
	case []any:
		if len(x) == 0 {
			out[prefix] = "[]"
		}
		for i, child := range x {
			flattenValue(child, fmt.Sprintf("%s[%d]", prefix, i), out)
		}
	default:
		b, _ := json.Marshal(x)
		out[prefix] = string(b)
	}
}

// auditFilter is the audit page's filter form.
type auditFilter struct {
	Entity, Key string
}

var auditEntities = []struct{ Value, Label string }{
	{"", "Everything"}, {"experiment", "Experiments"}, {"flag", "Flags"}, {"segment", "Segments"},
	{"saved_group", "Saved groups"}, {"api_key", "API keys"}, {"user", "Users"},
}

const auditPageSize = 100

func (d *Dashboard) auditList(c echo.Context) error {
	f := auditFilter{Entity: c.QueryParam("entity"), Key: c.QueryParam("key")}
	entries, err := d.Config.Audit(c.Request().Context(), experiments.AuditQuery{Entity: experiments.Kind(f.Entity), Key: f.Key, Limit: auditPageSize})
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, auditView(d.page(c, "audit", "Audit log"), f, entries))
}

// entityURL links an audited document to its page, where there is one.
func entityURL(e experiments.AuditEntry) string {
	switch e.Entity {
	case experiments.KindExperiment:
		return "/experiments/" + e.Key
	case experiments.KindFlag:
		return "/flags/" + e.Key
	case experiments.KindSegment:
		return "/segments/" + e.Key
	case experiments.KindSavedGroup:
		return "/saved-groups/" + e.Key
	}
	return ""
}

func auditID(e experiments.AuditEntry) string { return strconv.FormatInt(e.ID, 10) }

// entityLabel names a kind of audited document for reading.
func entityLabel(k experiments.Kind) string {
	switch k {
	case experiments.KindSavedGroup:
		return "saved group"
	case "api_key":
		return "API key"
	}
	return string(k)
}
