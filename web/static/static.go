// Package static holds the dashboard's browser assets, embedded in the binary so lift
// needs no CDN and no build step: htmx 2.0.11 (from the npm package htmx.org, BSD
// Zero Clause licence in htmx.LICENSE), the hand-written stylesheet and the browser
// SDK lift.js (docs/sdk.md), served at /static/lift.js with CORS, and the icon
// browsers ask for at /favicon.ico (lift's mark at 16, 32 and 48 pixels).
package static

import "embed"

// FS serves under /static/.
//
//go:embed htmx.min.js app.css lift.js favicon.ico
var FS embed.FS
