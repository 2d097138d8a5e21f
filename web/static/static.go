// Package static holds the dashboard's browser assets, embedded in the binary so lift
// needs no CDN and no build step: htmx 2.0.11 (from the npm package htmx.org, BSD
// Zero Clause licence in htmx.LICENSE) and the hand-written stylesheet.
package static

import "embed"

// FS serves under /static/.
//
//go:embed htmx.min.js app.css
var FS embed.FS
