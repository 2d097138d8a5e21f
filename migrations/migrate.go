// Package migrations holds lift's schema for Postgres (postgres/*.sql) and ClickHouse
// (clickhouse/*.sql), embedded in the binary, and applies it with goose.
//
// Both entry points are idempotent: a second run finds every migration applied and does
// nothing. Neither prints anything; pass WithLogger to see what goose does.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	goosedb "github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"

	"github.com/liftlab/lift/internal/chconn"
)

//go:embed postgres/*.sql clickhouse/*.sql
var files embed.FS

// FS returns the embedded migration files of one engine: "postgres" or "clickhouse".
func FS(engine string) (fs.FS, error) {
	return fs.Sub(files, engine)
}

// VersionTable is the table, in each migrated database, where goose records applied
// migrations.
const VersionTable = "goose_db_version"

// Option configures Postgres and ClickHouse.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	cluster string
}

// WithCluster makes ClickHouse migrate a cluster: the database and the tables are
// created ON CLUSTER name, as replicated local tables under Distributed ones (see
// cluster.go). Without it, or with "", the single-server schema is applied as written.
func WithCluster(name string) Option {
	return func(o *options) { o.cluster = name }
}

// WithLogger makes goose log each applied migration to l. Without it nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

func newOptions(opts []Option) options {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Postgres creates the database named in url when it does not exist yet (through the
// "postgres" maintenance database of the same server, or "template1" when that one is
// missing) and applies every pending Postgres migration. Concurrent callers are
// serialised by an advisory lock, so several processes may call it at start-up.
// It returns an error if the server cannot be reached, the database cannot be created,
// or a migration fails.
func Postgres(ctx context.Context, url string, opts ...Option) error {
	o := newOptions(opts)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("migrations: parse postgres url: %w", err)
	}
	if err := ensurePostgresDatabase(ctx, cfg); err != nil {
		return err
	}

	db, err := sql.Open("pgx", url)
	if err != nil {
		return fmt.Errorf("migrations: open postgres: %w", err)
	}
	defer db.Close()

	fsys, err := FS("postgres")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	// Another migrator holding the lock is normally done within seconds: poll every second
	// for up to five minutes instead of goose's default five-second interval.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrations: postgres locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(o.logger.With("store", "postgres", "database", cfg.Database)),
	)
	if err != nil {
		return fmt.Errorf("migrations: postgres provider: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: postgres %q: %w", cfg.Database, err)
	}
	return nil
}

// ensurePostgresDatabase creates cfg.Database unless it exists. Two callers racing to
// create it both succeed.
func ensurePostgresDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	name := cfg.Database
	if name == "" {
		// The server defaults to the user's database, which must exist already.
		return nil
	}
	var conn *pgx.Conn
	var err error
	for _, maint := range []string{"postgres", "template1"} {
		c := cfg.Copy()
		c.Database = maint
		conn, err = pgx.ConnectConfig(ctx, c)
		if err == nil || !isPgCode(err, "3D000") { // invalid_catalog_name
			break
		}
	}
	if err != nil {
		return fmt.Errorf("migrations: connect to postgres maintenance database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var exists bool
	if err := conn.QueryRow(ctx,
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name,
	).Scan(&exists); err != nil {
		return fmt.Errorf("migrations: look up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	// 42P04 duplicate_database, or 23505 on pg_database's unique index when two CREATE
	// DATABASE statements for the same name run at the same time: someone else won.
	if err != nil && !isPgCode(err, "42P04") && !isPgCode(err, "23505") {
		return fmt.Errorf("migrations: create database %q: %w", name, err)
	}
	return nil
}

func isPgCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

var chIdentifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ClickHouse creates the ClickHouse database when it does not exist and applies every
// pending ClickHouse migration to it, over the native protocol at addr (host:port).
// database must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*).
//
// The version table is written with INSERT … SELECT because clickhouse-go's Exec of
// INSERT … VALUES hangs on ClickHouse 18.16 (see docs/storage.md).
// ClickHouse has no locks: concurrent callers may both apply a migration, which the
// migrations tolerate by being written with IF [NOT] EXISTS.
// addr may list several servers of a cluster, comma-separated; the migrator talks to
// the first that answers. With WithCluster the statements run ON CLUSTER and wait for
// every node, so a node that is down makes the migration fail after ClickHouse's
// distributed_ddl_task_timeout (180 s by default).
// It returns an error if the server cannot be reached or a migration fails.
func ClickHouse(ctx context.Context, addr, database string, opts ...Option) error {
	o := newOptions(opts)
	if !chIdentifier.MatchString(database) {
		return fmt.Errorf("migrations: invalid clickhouse database name %q", database)
	}
	if o.cluster != "" && !chIdentifier.MatchString(o.cluster) {
		return fmt.Errorf("migrations: invalid clickhouse cluster name %q", o.cluster)
	}

	fsys, err := FS("clickhouse")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if o.cluster != "" {
		if fsys, err = clusterFS(fsys, o.cluster, database); err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
	}
	return clickhouseUp(ctx, addr, database, fsys, o)
}

// clickhouseUp applies the migrations of fsys.
func clickhouseUp(ctx context.Context, addr, database string, fsys fs.FS, o options) error {
	admin := OpenClickHouse(addr, "default")
	create := "CREATE DATABASE IF NOT EXISTS `" + database + "`"
	if o.cluster != "" {
		create += " ON CLUSTER `" + o.cluster + "`"
	}
	_, err := admin.ExecContext(ctx, create)
	admin.Close()
	if err != nil {
		return fmt.Errorf("migrations: create clickhouse database %q: %w", database, err)
	}

	db := OpenClickHouse(addr, database)
	defer db.Close()
	querier := clickhouseQuerier{cluster: o.cluster, database: database}
	if o.cluster != "" {
		// The version table is replicated to every node; this one may not have fetched
		// the newest rows yet.
		if err := querier.syncVersions(ctx, db); err != nil {
			return err
		}
	}
	store, err := goosedb.NewStoreFromQuerier(VersionTable, querier)
	if err != nil {
		return fmt.Errorf("migrations: clickhouse store: %w", err)
	}
	popts := []goose.ProviderOption{
		goose.WithStore(store),
		// ClickHouse has no transactions; run each statement on its own.
		goose.WithIsolateDDL(true),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(o.logger.With("store", "clickhouse", "database", database)),
	}
	if o.cluster != "" {
		// Some rewritten statements run per shard (PerShard), which goose's SQL
		// migrations cannot do: each file becomes a Go migration of its version.
		shards, err := openShards(ctx, db, o.cluster)
		if err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		defer func() {
			for _, s := range shards {
				s.Close()
			}
		}()
		gms, err := clusterMigrations(fsys, shards)
		if err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		fsys = nil
		popts = append(popts, goose.WithGoMigrations(gms...))
	}
	p, err := goose.NewProvider(goose.DialectCustom, db, fsys, popts...)
	if err != nil {
		return fmt.Errorf("migrations: clickhouse provider: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: clickhouse %q: %w", database, err)
	}
	return nil
}

// OpenClickHouse returns a database/sql handle on a ClickHouse database over the native
// protocol, the only one that works on ClickHouse 18.16.
// addr may be a comma-separated list of servers (chconn.Addrs).
func OpenClickHouse(addr, database string) *sql.DB {
	return clickhouse.OpenDB(&clickhouse.Options{
		Addr:        chconn.Addrs(addr),
		Protocol:    clickhouse.Native,
		Auth:        clickhouse.Auth{Database: database, Username: "default"},
		Settings:    chconn.Settings(),
		DialTimeout: 5 * time.Second,
	})
}

// clickhouseQuerier is goose's ClickHouse dialect adapted to ClickHouse 18.16: the insert
// uses INSERT … SELECT, the delete has no mutations_sync setting, and TableExists reads
// system.tables instead of relying on a failing query. On a cluster the version table
// is one ReplicatedMergeTree with a replica on every node.
type clickhouseQuerier struct {
	cluster, database string
}

func (q clickhouseQuerier) CreateTable(t string) string {
	if q.cluster != "" {
		return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s ON CLUSTER %s (
		version_id Int64,
		is_applied UInt8,
		date Date DEFAULT today(),
		tstamp DateTime DEFAULT now()
	) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/%s/%s', '{replica}') ORDER BY (version_id)`,
			"`"+q.database+"`.`"+t+"`", "`"+q.cluster+"`", q.database, t)
	}
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
		version_id Int64,
		is_applied UInt8,
		date Date DEFAULT today(),
		tstamp DateTime DEFAULT now()
	) ENGINE = MergeTree() ORDER BY (version_id)`, t)
}

// syncVersions waits until the version table on the node db talks to has every row
// written on the other nodes; there is nothing to wait for before it exists.
func (q clickhouseQuerier) syncVersions(ctx context.Context, db *sql.DB) error {
	var exists bool
	if err := db.QueryRowContext(ctx, q.TableExists(VersionTable)).Scan(&exists); err != nil {
		return fmt.Errorf("migrations: look up %s: %w", VersionTable, err)
	}
	if !exists {
		return nil
	}
	if _, err := db.ExecContext(ctx, "SYSTEM SYNC REPLICA `"+q.database+"`.`"+VersionTable+"`"); err != nil {
		return fmt.Errorf("migrations: sync %s: %w", VersionTable, err)
	}
	return nil
}

func (clickhouseQuerier) InsertVersion(t string) string {
	return fmt.Sprintf(`INSERT INTO %s (version_id, is_applied) SELECT $1, $2`, t)
}

func (clickhouseQuerier) DeleteVersion(t string) string {
	return fmt.Sprintf(`ALTER TABLE %s DELETE WHERE version_id = $1`, t)
}

func (clickhouseQuerier) GetMigrationByVersion(t string) string {
	return fmt.Sprintf(`SELECT tstamp, is_applied FROM %s WHERE version_id = $1 ORDER BY tstamp DESC LIMIT 1`, t)
}

func (clickhouseQuerier) ListMigrations(t string) string {
	return fmt.Sprintf(`SELECT version_id, is_applied FROM %s ORDER BY version_id DESC`, t)
}

func (clickhouseQuerier) GetLatestVersion(t string) string {
	return fmt.Sprintf(`SELECT max(version_id) FROM %s`, t)
}

func (clickhouseQuerier) TableExists(t string) string {
	return fmt.Sprintf(`SELECT count() > 0 FROM system.tables WHERE database = currentDatabase() AND name = '%s'`, t)
}
