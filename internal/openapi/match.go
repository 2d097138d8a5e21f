package openapi

import (
	"fmt"
	"mime"
	"regexp"
	"strconv"
	"strings"
)

// Operation finds the documented path template a request path matches (the one with
// the most literal segments when several do, as routers prefer them) and reports
// whether the document has method on it.
func (d *Doc) Operation(method, urlPath string) (template string, err error) {
	paths, _ := d.Root["paths"].(map[string]any)
	best, bestLiterals := "", -1
	for tmpl, item := range paths {
		if !templateRegexp(tmpl).MatchString(urlPath) {
			continue
		}
		if literals := strings.Count(tmpl, "/") - strings.Count(tmpl, "{"); literals > bestLiterals {
			if ops, _ := item.(map[string]any); ops[strings.ToLower(method)] != nil {
				best, bestLiterals = tmpl, literals
			}
		}
	}
	if best == "" {
		return "", fmt.Errorf("openapi: no operation documented for %s %s", method, urlPath)
	}
	return best, nil
}

var param = regexp.MustCompile(`\\\{[^/]+?\\\}`)

func templateRegexp(tmpl string) *regexp.Regexp {
	return regexp.MustCompile("^" + param.ReplaceAllString(regexp.QuoteMeta(tmpl), `[^/]+`) + "$")
}

// CheckResponse checks an answer against the document: the operation and status must
// be documented, the media type must be one the response declares, and a JSON body
// must validate against its schema. A body of another media type is not inspected.
func (d *Doc) CheckResponse(method, urlPath string, status int, contentType string, body []byte) error {
	tmpl, err := d.Operation(method, urlPath)
	if err != nil {
		return err
	}
	r, err := d.Response(tmpl, method, strconv.Itoa(status))
	if err != nil {
		if r, err = d.Response(tmpl, method, "default"); err != nil {
			return fmt.Errorf("openapi: %s %s (%s) answered %d, which the document does not list", method, urlPath, tmpl, status)
		}
	}
	types := r.MediaTypes()
	if len(types) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("openapi: %s %s answered %d with a body, which the document does not declare", method, urlPath, status)
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("openapi: %s %s answered %d with Content-Type %q: %v", method, urlPath, status, contentType, err)
	}
	schema, ok := r.Schema(mt)
	if !ok {
		return fmt.Errorf("openapi: %s %s answered %d as %s; the document declares %v", method, urlPath, status, mt, types)
	}
	if mt != "application/json" {
		return nil
	}
	if err := d.ValidateJSON(schema, body); err != nil {
		return fmt.Errorf("openapi: %s %s answered %d: %w", method, urlPath, status, err)
	}
	return nil
}
