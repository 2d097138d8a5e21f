package web

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Admin is the handler of the admin address (LIFT_ADMIN_ADDR, off by default): Go's
// profiler under /debug/pprof/ and the metrics under /metrics (which the public
// address then no longer serves, see Deps.AdminMetrics). It has no
// authentication, so it belongs on loopback or a private network, never on the
// public listener.
func Admin(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forbidFraming(w.Header()) // pprof's index is an HTML page
		mux.ServeHTTP(w, r)
	})
}
