package experiments

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
)

// ConfigEraser is the configuration's part of an erasure (gdpr.Runner's and
// gdpr.Service's Configuration): saved groups lose the ids through the
// audited store, the audit entry naming each by its subject; other documents naming
// them are reported for review.
type ConfigEraser struct{ Store AuditedStore }

// AuditedStore is what ConfigEraser needs of the configuration store.
type AuditedStore interface {
	List(ctx context.Context, kind Kind) ([]json.RawMessage, error)
	UpdateAudited(ctx context.Context, kind Kind, key, action, actor string,
		change func(before json.RawMessage) (json.RawMessage, error), audited func(doc json.RawMessage) json.RawMessage) (json.RawMessage, error)
}

// ForgetInSavedGroups removes the users (subjects maps each id to its subject) from
// every saved group holding them and returns the groups changed.
func (c ConfigEraser) ForgetInSavedGroups(ctx context.Context, actor string, subjects map[string]string) ([]string, error) {
	docs, err := c.Store.List(ctx, KindSavedGroup)
	if err != nil {
		return nil, err
	}
	erased := func(v any) bool { s, ok := v.(string); _, found := subjects[s]; return ok && found }
	var changed []string
	for _, doc := range docs {
		var g SavedGroup
		if err := json.Unmarshal(doc, &g); err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(g.Values, erased) {
			continue
		}
		// Values are rewritten in the group's own document: ids removed from it,
		// replaced by their subjects in the audit log's copy of it.
		values := func(doc json.RawMessage, edit func([]any) []any) (json.RawMessage, error) {
			var m map[string]any
			if err := json.Unmarshal(doc, &m); err != nil {
				return nil, err
			}
			vs, _ := m["values"].([]any)
			m["values"] = edit(vs)
			return json.Marshal(m)
		}
		remove := func(vs []any) []any { return slices.DeleteFunc(vs, erased) }
		redact := func(vs []any) []any {
			for i, v := range vs {
				if erased(v) {
					vs[i] = subjects[v.(string)]
				}
			}
			return vs
		}
		_, err := c.Store.UpdateAudited(ctx, KindSavedGroup, g.Key, "erase-user", actor,
			func(before json.RawMessage) (json.RawMessage, error) { return values(before, remove) },
			func(doc json.RawMessage) json.RawMessage {
				out, err := values(doc, redact)
				if err != nil {
					return json.RawMessage(`{"values":"(not recorded)"}`) // never the ids
				}
				return out
			})
		if err != nil {
			return nil, fmt.Errorf("saved group %q: %w", g.Key, err)
		}
		changed = append(changed, g.Key)
	}
	return changed, nil
}

// Mentions lists the documents naming any of the ids (the other kinds are checked
// for review by hand).
func (c ConfigEraser) Mentions(ctx context.Context, userIDs []string) ([]string, error) {
	var out []string
	for _, kind := range []Kind{KindSavedGroup, KindExperiment, KindFlag, KindSegment} {
		docs, err := c.Store.List(ctx, kind)
		if err != nil {
			return nil, err
		}
		for _, doc := range docs {
			for _, id := range userIDs {
				quoted, _ := json.Marshal(id)
				if bytes.Contains(doc, quoted) {
					var d struct{ Key string }
					_ = json.Unmarshal(doc, &d)
					out = append(out, string(kind)+"/"+d.Key)
					break
				}
			}
		}
	}
	return out, nil
}
