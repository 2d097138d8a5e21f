package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/pgstore"
	"github.com/liftlab/lift/internal/config"
	"github.com/liftlab/lift/web"
	"github.com/liftlab/lift/web/auth"
	authstore "github.com/liftlab/lift/web/auth/pgstore"
)

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// serve runs the server until ctx is cancelled, then drains in-flight requests.
// The api role serves decisions, OFREP and the management API; every role serves
// /healthz, /readyz and /metrics. The ingest and worker roles get their work from the
// ingestion, bandit and segment components as those are added.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "all", "all, api, ingest or worker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch *role {
	case "all", "api", "ingest", "worker":
	default:
		return fmt.Errorf("--role: want all, api, ingest or worker, got %q", *role)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr).With("role", *role)
	log.Info("starting lift", "config", cfg)

	pool, err := pgxpool.New(ctx, cfg.PostgresURL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pool.Close()
	store := pgstore.New(pool)
	keyStore := authstore.New(pool)
	live := experiments.NewLive(store)
	keys := auth.NewKeyRing(keyStore)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	snapshotAge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lift_snapshot_age_seconds",
		Help: "Seconds since the decision snapshot was loaded from Postgres.",
	}, func() float64 { return time.Since(live.Snapshot().LoadedAt).Seconds() })
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lift_snapshot_reloads_total",
		Help: "Snapshot reload attempts by outcome.",
	}, []string{"outcome"})
	reg.MustRegister(snapshotAge, reloads)

	// Load once before listening so the first requests see the configuration; if
	// Postgres is down the watcher keeps trying and /readyz says so meanwhile.
	loadCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	for _, r := range []pgstore.Reloader{live, keys} {
		if err := r.Reload(loadCtx); err != nil {
			log.Warn("initial configuration load failed; will retry", "err", err)
		}
	}
	cancel()
	watcher := &pgstore.Watcher{
		ConnString: cfg.PostgresURL,
		Resync:     cfg.Resync,
		Log:        log,
		Reloaders:  []pgstore.Reloader{live, keys},
		OnReload: func(err error) {
			if err != nil {
				reloads.WithLabelValues("error").Inc()
			} else {
				reloads.WithLabelValues("ok").Inc()
			}
		},
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go watcher.Run(watchCtx)

	handler := web.New(web.Deps{
		Log:       log,
		Snapshots: live,
		Keys:      keys,
		Manager:   experiments.NewService(store),
		KeyStore:  keyStore,
		Ready: func(ctx context.Context) map[string]error {
			return map[string]error{"postgres": pool.Ping(ctx)}
		},
		Registry:     reg,
		MaxBodyBytes: cfg.MaxBodyBytes,
	})
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	// Tests and scripts read this line to learn the address (the port may be 0).
	fmt.Fprintf(stdout, "lift listening on http://%s\n", ln.Addr())
	log.Info("listening", "addr", ln.Addr().String())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
