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
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/liftlab/lift/experiments"
	"github.com/liftlab/lift/experiments/chstore"
	"github.com/liftlab/lift/experiments/pgstore"
	"github.com/liftlab/lift/experiments/recommend"
	recpg "github.com/liftlab/lift/experiments/recommend/pgstore"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/gdpr"
	gdprch "github.com/liftlab/lift/ingest/gdpr/chstore"
	gdprpg "github.com/liftlab/lift/ingest/gdpr/pgstore"
	ingestpg "github.com/liftlab/lift/ingest/pgstore"
	"github.com/liftlab/lift/ingest/typereg"
	"github.com/liftlab/lift/internal/chconn"
	"github.com/liftlab/lift/internal/config"
	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/internal/logctx"
	segstore "github.com/liftlab/lift/segments/pgstore"
	"github.com/liftlab/lift/segments/webhooks"
	"github.com/liftlab/lift/web"
	"github.com/liftlab/lift/web/auth"
	authstore "github.com/liftlab/lift/web/auth/pgstore"
)

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(logctx.Handler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(logctx.Handler(slog.NewJSONHandler(w, opts)))
}

// serve runs the server until ctx is cancelled, then drains in-flight requests.
// Every role serves /healthz, /readyz and /metrics (on LIFT_ADMIN_ADDR instead when
// that is set) and keeps the decision snapshot. The api role (role_api.go) serves
// decisions, OFREP, GrowthBook's SDK protocol, the management API and the dashboard,
// and publishes events and exposures to RabbitMQ; the ingest role (role_ingest.go)
// moves them into ClickHouse; the worker role (role_worker.go) runs the bandit
// updater, the segment engine, erasures, retention, the recommender trainer and
// webhook deliveries; all runs the three.
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
	s, err := newServer(ctx, cfg, *role, stderr)
	if err != nil {
		return err
	}
	defer s.close()
	if s.runs("api") {
		s.startPublishing(ctx)
	}
	if s.runs("ingest") {
		if err := s.startIngest(); err != nil {
			return err
		}
	}
	if err := s.openStorage(); err != nil {
		return err
	}
	if s.runs("api") {
		s.wireAPI()
	}
	if s.runs("worker") {
		if err := s.startWorker(); err != nil {
			return err
		}
	}
	if s.runs("api") {
		if err := s.wireDashboard(); err != nil {
			return err
		}
	}
	return s.listen(ctx, stdout)
}

// server is one lift process: what every role shares, filled in by newServer and
// openStorage, and what the roles it runs add to deps and the pipeline.
type server struct {
	cfg  config.Config
	role string
	log  *slog.Logger
	reg  *prometheus.Registry

	pool       *pgxpool.Pool
	store      *pgstore.Store
	keyStore   *authstore.Store
	typeStore  *ingestpg.Store
	live       *experiments.Live
	members    *experiments.MemberSet
	features   *experiments.FeatureSet
	eventTypes *typereg.Registry
	models     *recommend.Models
	privacy    *ingest.Privacy
	metrics    *ingest.Metrics
	// Webhook URLs are checked against it when saved (api) and every delivery's
	// connection when dialled (worker).
	webhookGuard *webhooks.Guard

	// Storage every role reads (openStorage); the ClickHouse connections are lazy, so
	// lift starts (and decides) while ClickHouse is down.
	results   *experiments.ResultsService
	gdprStore *gdprch.Store
	gdprJobs  *gdprpg.Store
	subjects  *gdpr.Subjects
	retention *gdpr.Retention

	// chHealth probes every ClickHouse server (each replica of each shard on a
	// cluster) for /readyz, the metrics and the ingest consumers.
	chHealth *chconn.Health

	// ready are the /readyz checks; deps what the HTTP handler is built from.
	ready map[string]func(context.Context) error
	deps  web.Deps

	// The pipeline (publisher, consumers, engines) outlives ctx until the HTTP
	// server has drained, so requests in flight still get their events confirmed.
	pipeCtx  context.Context
	stopPipe context.CancelFunc
	pipeline sync.WaitGroup
	// closers run in reverse order once the pipeline has stopped.
	closers []func()
}

func (s *server) runs(role string) bool { return s.role == "all" || s.role == role }

func (s *server) onClose(f func()) { s.closers = append(s.closers, f) }

// close stops the pipeline, waits for it, then closes the connections.
func (s *server) close() {
	s.stopPipe()
	s.pipeline.Wait()
	for _, f := range slices.Backward(s.closers) {
		f()
	}
}

// newServer connects to Postgres, loads the configuration, and starts what every
// role keeps up to date: the decision snapshot, API keys and event types (and, for
// the api role, segment memberships, features and recommender models).
func newServer(ctx context.Context, cfg config.Config, role string, stderr io.Writer) (*server, error) {
	log := newLogger(cfg, stderr).With("role", role)
	log.Info("starting lift", "config", cfg)
	pool, err := pgxpool.New(ctx, cfg.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &server{cfg: cfg, role: role, log: log, pool: pool, reg: prometheus.NewRegistry(),
		store: pgstore.New(pool), keyStore: authstore.New(pool), typeStore: ingestpg.New(pool),
		webhookGuard: &webhooks.Guard{Allow: cfg.WebhookAllowNets},
		ready:        map[string]func(context.Context) error{"postgres": pool.Ping}}
	s.pipeCtx, s.stopPipe = context.WithCancel(context.WithoutCancel(ctx))
	s.onClose(pool.Close)

	s.live = experiments.NewLive(s.store)
	// Behavioural segment memberships follow the segment engine's table, change by
	// change, so /v1/decide reads them from memory; so do users' features
	// (docs/recommendations.md).
	s.members, s.features = experiments.NewMemberSet(), experiments.NewFeatureSet()
	s.live.Members, s.live.FeatureValues = s.members, s.features
	keys := auth.NewKeyRing(s.keyStore)
	s.eventTypes = typereg.New(s.typeStore)
	s.deps.Keys = keys

	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	snapshotAge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lift_snapshot_age_seconds",
		Help: "Seconds since the decision snapshot was loaded from Postgres.",
	}, func() float64 { return time.Since(s.live.Snapshot().LoadedAt).Seconds() })
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lift_snapshot_reloads_total",
		Help: "Snapshot reload attempts by outcome.",
	}, []string{"outcome"})
	reloads.WithLabelValues("ok")
	reloads.WithLabelValues("error")
	s.reg.MustRegister(snapshotAge, reloads, snapshotInfo{s.live})

	// Load once before listening so the first requests see the configuration; if
	// Postgres is down the watcher keeps trying and /readyz says so meanwhile.
	reloaders := []pgstore.Reloader{s.live, keys, s.eventTypes}
	loadCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	for _, r := range reloaders {
		if err := r.Reload(loadCtx); err != nil {
			log.Warn("initial configuration load failed; will retry", "err", err)
		}
	}
	cancel()
	watcher := &pgstore.Watcher{
		ConnString: cfg.PostgresURL,
		Resync:     cfg.Resync,
		Log:        log,
		Reloaders:  reloaders,
		OnReload: func(err error) {
			if err != nil {
				reloads.WithLabelValues("error").Inc()
			} else {
				reloads.WithLabelValues("ok").Inc()
			}
		},
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	s.onClose(stopWatch)
	go watcher.Run(watchCtx)
	// Every decision process holds the newest model of each recommender, loaded
	// when the trainer saves one.
	s.models = recommend.NewModels(recpg.New(pool))
	if s.runs("api") {
		go segstore.New(pool).Follow(watchCtx, cfg.PostgresURL, s.members, time.Second, log)
		go segstore.New(pool).FollowFeatures(watchCtx, cfg.PostgresURL, s.features, time.Second, log)
		go recpg.Follow(watchCtx, cfg.PostgresURL, s.models, cfg.Resync, log)
	}

	if s.chHealth, err = chconn.NewHealth(cfg.ClickHouseAddr, cfg.ClickHouseDB, cfg.ClickHouseCluster); err != nil {
		s.close()
		return nil, err
	}
	s.onClose(func() { s.chHealth.Close() })
	s.reg.MustRegister(s.chHealth)
	s.ready["clickhouse"] = s.clickHouseReady

	s.metrics = ingest.NewMetrics(s.reg)
	if s.privacy, err = newPrivacy(cfg, ingest.NewPrivacyMetrics(s.reg)); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// clickHouseReady is the /readyz check of ClickHouse (docs/deploy.md, "Health of a
// cluster"). A replica that is down or read-only degrades every role. A shard none of
// whose replicas answers (on one server: the server down) makes the ingest and worker
// roles unavailable, 503, since they can neither store nor read its users' rows. The
// api and all roles, which serve decisions, stay ready and degraded: they decide from
// their snapshot, and taking them out of a load balancer would turn a database
// outage into a decision outage.
func (s *server) clickHouseReady(ctx context.Context) error {
	err := s.chHealth.Check(ctx).Err()
	if errors.Is(err, chconn.ErrShardDown) && !s.runs("api") {
		return fmt.Errorf("%w: %w", derrors.ErrUnavailable, err)
	}
	return err
}

// openStorage opens the ClickHouse stores the results, the bandit updater, erasure,
// export and retention read, all lazily connected.
func (s *server) openStorage() error {
	events, err := chstore.Open(s.cfg.ClickHouseAddr, s.cfg.ClickHouseDB)
	if err != nil {
		return err
	}
	s.onClose(func() { events.Close() })
	s.results = &experiments.ResultsService{Store: s.store, Events: events}
	if s.gdprStore, err = gdprch.Open(s.cfg.ClickHouseAddr, s.cfg.ClickHouseDB); err != nil {
		return err
	}
	s.onClose(func() { s.gdprStore.Close() })
	s.gdprJobs = gdprpg.New(s.pool)
	// Jobs and audit entries name users by a digest keyed with the installation's
	// secret, shared by the api (requests, exports) and the erasure runner.
	s.subjects = &gdpr.Subjects{Key: s.gdprJobs.SubjectKey}
	s.retention = &gdpr.Retention{Partitions: s.gdprStore, Policies: s.gdprJobs, DefaultMonths: s.cfg.RetentionMonths,
		Every: s.cfg.RetentionEvery, Log: s.log}
	return nil
}

// httpDeps completes deps with what every role's handler needs: health, readiness,
// metrics, keys, the snapshot and the limits.
func (s *server) httpDeps() web.Deps {
	cfg, d := s.cfg, s.deps
	d.Log, d.Snapshots, d.Registry = s.log, s.live, s.reg
	d.Manager, d.KeyStore = experiments.NewService(s.store), s.keyStore
	d.Ready = func(ctx context.Context) map[string]error {
		errs := make(map[string]error, len(s.ready))
		for name, check := range s.ready {
			errs[name] = check(ctx)
		}
		return errs
	}
	// With an admin address, the metrics are served there only: they describe
	// traffic, keys' rates and internals that the public need not see.
	d.AdminMetrics = cfg.AdminAddr != ""
	d.TrustedProxies, d.MaxBodyBytes = cfg.TrustedProxies, cfg.MaxBodyBytes
	d.DecideRate, d.APIRate = float64(cfg.DecideRate), float64(cfg.APIRate)
	d.Privacy = s.privacy
	d.StreamHeartbeat, d.StreamsPerKey = cfg.StreamHeartbeat, cfg.StreamsPerKey
	return d
}

// listen serves HTTP (and the admin address) until ctx is cancelled or serving fails.
func (s *server) listen(ctx context.Context, stdout io.Writer) error {
	streamsDone := make(chan struct{})
	// GrowthBook streams end when the server shuts down (see srv below).
	s.deps.StreamsDone = streamsDone
	handler := web.New(s.httpDeps())
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	// Shutdown waits for requests in flight, which open event streams never finish.
	srv.RegisterOnShutdown(func() { close(streamsDone) })
	// Tests and scripts read this line to learn the address (the port may be 0).
	fmt.Fprintf(stdout, "lift listening on http://%s\n", ln.Addr())
	s.log.Info("listening", "addr", ln.Addr().String())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	if s.cfg.AdminAddr != "" {
		adminLn, err := net.Listen("tcp", s.cfg.AdminAddr)
		if err != nil {
			return fmt.Errorf("LIFT_ADMIN_ADDR: %w", err)
		}
		admin := &http.Server{Handler: web.Admin(s.reg), ReadHeaderTimeout: 10 * time.Second}
		defer admin.Close()
		go func() { _ = admin.Serve(adminLn) }()
		fmt.Fprintf(stdout, "lift admin on http://%s\n", adminLn.Addr())
		s.log.Info("admin address (pprof, metrics)", "addr", adminLn.Addr().String())
	}
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "grace", s.cfg.ShutdownGrace)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	s.stopPipe()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
