package dashboard

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	"github.com/liftlab/lift/internal/derrors"
)

// fieldLabels names the parts of a field path as the forms do; parts not listed are
// shown with spaces for underscores, parts labelled "" are left out.
var fieldLabels = map[string]string{
	"variants": "Variant", "rules": "Rule", "metrics": "Metric", "segments": "Segment",
	"min_weight": "minimum weight", "update_every": "update interval", "winner_threshold": "winner at P(best)",
	"per_segment": "learn separately for segments", "correction": "multiple-comparison correction",
	"id": "ID", "(document)": "Document", "(body)": "Request", "key": "key",
	"ttl": "stay a member for", "hash_version": "hash version",
	"analysis": "", "min_users": "minimum users per variant", "min_runtime": "minimum runtime",
}

// conditionFields hold a condition (or rule) whose inner paths are the condition's
// own, shown as written: "Targeting (country.$in)".
var conditionFields = map[string]bool{"targeting": true, "condition": true, "where": true, "rule": true}

var indexed = regexp.MustCompile(`^(.+)\[(\d+)\]$`)

// humanField names a field path the way the form labels it: "variants[1].value" is
// "Variant 2 value", "goal.event" "Goal event", "targeting.country.$in" "Targeting
// (country.$in)".
func humanField(path string) string {
	parts := strings.Split(path, ".")
	var words []string
	for i, p := range parts {
		if m := indexed.FindStringSubmatch(p); m != nil {
			n, _ := strconv.Atoi(m[2])
			words = append(words, label(m[1])+" "+strconv.Itoa(n+1))
		} else {
			if l := label(p); l != "" {
				words = append(words, l)
			}
		}
		if conditionFields[p] && i < len(parts)-1 {
			words = append(words, "("+strings.Join(parts[i+1:], ".")+")")
			break
		}
	}
	s := strings.Join(words, " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func label(part string) string {
	if l, ok := fieldLabels[part]; ok {
		return l
	}
	return strings.ReplaceAll(part, "_", " ")
}

// problemsText lists field errors for a sentence: "Variant 2 weight must be …; …".
func problemsText(fields []derrors.FieldError) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = humanField(f.Field) + " " + f.Message
	}
	return strings.Join(parts, "; ")
}

// summary is the form's list of problems, each once, with its field as the form names
// it.
func (f fieldErrors) summary() []derrors.FieldError {
	seen := map[string]bool{}
	var out []derrors.FieldError
	for _, e := range f {
		name := humanField(e.Field)
		if seen[name+"\x00"+e.Message] {
			continue
		}
		seen[name+"\x00"+e.Message] = true
		out = append(out, derrors.FieldError{Field: name, Message: e.Message})
	}
	return out
}

// Rest returns the messages for field and anything below it that the form shows
// nowhere else: shown lists the sub-fields that have their own place ("key",
// "weight" for variants[i].key and variants[i].weight). A message about a sub-field is
// prefixed with its name ("Variant 2 name: …"), so nothing is said twice and nothing
// is lost.
func (f fieldErrors) Rest(field string, shown ...string) string {
	var out []string
	seen := map[string]bool{}
	for _, e := range f {
		var msg string
		switch {
		case e.Field == field:
			msg = e.Message
		case strings.HasPrefix(e.Field, field) && (e.Field[len(field)] == '.' || e.Field[len(field)] == '['):
			rest := e.Field[len(field):]
			if i := strings.IndexByte(rest, ']'); rest[0] == '[' && i > 0 {
				rest = rest[i+1:]
			}
			leaf, _, _ := strings.Cut(strings.TrimPrefix(rest, "."), ".")
			if leaf != "" && contains(shown, leaf) {
				continue
			}
			msg = humanField(e.Field) + ": " + e.Message
		default:
			continue
		}
		if !seen[msg] {
			seen[msg] = true
			out = append(out, msg)
		}
	}
	return strings.Join(out, "; ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// jsonProblem says why typed is not valid JSON, quoting what was typed: bare text
// needs double quotes.
func jsonProblem(typed string) string {
	t := strings.TrimSpace(typed)
	var v any
	err := json.Unmarshal([]byte(t), &v)
	if err == nil {
		return ""
	}
	if t != "" && !strings.ContainsAny(t[:1], `{["-0123456789`) && !strings.Contains(t, `"`) {
		b, _ := json.Marshal(t)
		return "is not valid JSON: text needs double quotes, as in " + string(b)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	return "is not valid JSON (" + msg + ")"
}
