// Package pgstore keeps erasure jobs and retention settings in PostgreSQL.
package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/internal/derrors"
)

// Store implements gdpr.Jobs and gdpr.Policies.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store using pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const jobColumns = "id, subject, status, steps, requested_by, requested_at, started_at, finished_at, error, user_ids, confirmed_links"

func scanJob(row pgx.Row) (gdpr.Job, error) {
	var j gdpr.Job
	var steps []byte
	err := row.Scan(&j.ID, &j.Subject, &j.Status, &steps, &j.RequestedBy, &j.RequestedAt, &j.StartedAt, &j.FinishedAt, &j.Error, &j.UserIDs, &j.ConfirmedLinks)
	if err != nil {
		return j, err
	}
	if len(j.ConfirmedLinks) == 0 {
		j.ConfirmedLinks = nil
	}
	if err := json.Unmarshal(steps, &j.Steps); err != nil {
		return j, fmt.Errorf("steps of job %s: %w", j.ID, err)
	}
	return j, nil
}

// auditView is what the audit log records of a job: never its user ids, only the
// subjects of the user and of the linked ids the operator confirmed.
func auditView(j gdpr.Job) map[string]any {
	v := map[string]any{"id": j.ID, "subject": j.Subject, "status": j.Status, "requested_by": j.RequestedBy,
		"confirmed_links": nonNil(j.ConfirmedLinks)}
	if j.FinishedAt != nil {
		v["finished_at"] = j.FinishedAt
		v["steps"] = j.Steps
	}
	return v
}

func audit(ctx context.Context, tx pgx.Tx, actor, action string, j gdpr.Job) error {
	after, err := json.Marshal(auditView(j))
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_log (actor, action, entity, entity_key, after) VALUES ($1, $2, 'erasure', $3, $4)`,
		actor, action, j.ID, after)
	return err
}

// Create stores a new job and records the request in the audit log.
func (s *Store) Create(ctx context.Context, j gdpr.Job) error {
	steps, err := json.Marshal(j.Steps)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO erasure_jobs (id, subject, user_ids, status, steps, requested_by, requested_at, confirmed_links)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, j.ID, j.Subject, j.UserIDs, j.Status, steps, j.RequestedBy, j.RequestedAt,
			nonNil(j.ConfirmedLinks)); err != nil {
			return err
		}
		return audit(ctx, tx, j.RequestedBy, "request", j)
	})
	if err != nil {
		return fmt.Errorf("pgstore: create erasure job: %w", err)
	}
	return nil
}

// Get returns derrors.ErrNotFound if there is no such job.
func (s *Store) Get(ctx context.Context, id string) (gdpr.Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, "SELECT "+jobColumns+" FROM erasure_jobs WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return gdpr.Job{}, fmt.Errorf("pgstore: erasure job %q: %w", id, derrors.ErrNotFound)
	}
	if err != nil {
		return gdpr.Job{}, fmt.Errorf("pgstore: erasure job %q: %w", id, err)
	}
	return j, nil
}

func (s *Store) jobs(ctx context.Context, what, query string, args ...any) ([]gdpr.Job, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", what, err)
	}
	jobs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (gdpr.Job, error) { return scanJob(row) })
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", what, err)
	}
	return jobs, nil
}

// List returns the newest jobs first, at most limit.
func (s *Store) List(ctx context.Context, limit int) ([]gdpr.Job, error) {
	return s.jobs(ctx, "list erasure jobs", "SELECT "+jobColumns+" FROM erasure_jobs ORDER BY requested_at DESC, id DESC LIMIT $1", limit)
}

// Open returns the jobs not done, oldest first.
func (s *Store) Open(ctx context.Context) ([]gdpr.Job, error) {
	return s.jobs(ctx, "open erasure jobs", "SELECT "+jobColumns+" FROM erasure_jobs WHERE status IN ('pending', 'running') ORDER BY requested_at, id")
}

// BySubject returns the jobs for any of the subjects, newest first.
func (s *Store) BySubject(ctx context.Context, subjects ...string) ([]gdpr.Job, error) {
	return s.jobs(ctx, "erasure jobs by subject", "SELECT "+jobColumns+" FROM erasure_jobs WHERE subject = ANY($1) ORDER BY requested_at DESC, id DESC", subjects)
}

// Save stores a job's progress.
func (s *Store) Save(ctx context.Context, j gdpr.Job) error {
	steps, err := json.Marshal(j.Steps)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `UPDATE erasure_jobs SET status = $2, steps = $3, started_at = $4, error = $5, user_ids = $6, updated_at = now()
		WHERE id = $1 AND status <> 'done'`, j.ID, j.Status, steps, j.StartedAt, j.Error, j.UserIDs)
	if err != nil {
		return fmt.Errorf("pgstore: save erasure job %s: %w", j.ID, err)
	}
	return nil
}

// Finish marks the job done, forgets its user ids and records the completion in the
// audit log.
func (s *Store) Finish(ctx context.Context, j gdpr.Job) error {
	steps, err := json.Marshal(j.Steps)
	if err != nil {
		return err
	}
	finished := time.Now().UTC()
	if j.FinishedAt != nil {
		finished = *j.FinishedAt
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE erasure_jobs SET status = 'done', steps = $2, finished_at = $3, error = '',
			user_ids = NULL, updated_at = now() WHERE id = $1`, j.ID, steps, finished); err != nil {
			return err
		}
		j.FinishedAt = &finished
		return audit(ctx, tx, "erasure:"+j.ID, "complete", j)
	})
	if err != nil {
		return fmt.Errorf("pgstore: finish erasure job %s: %w", j.ID, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SubjectKey returns the installation's secret for gdpr.Subjects, generating it
// on first use (32 bytes from crypto/rand). Processes starting together agree: the
// first insert wins and everyone reads it back.
func (s *Store) SubjectKey(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("pgstore: subject key: %w", err)
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO privacy_keys (name, key) VALUES ('subjects', $1) ON CONFLICT (name) DO NOTHING", fresh); err != nil {
		return nil, fmt.Errorf("pgstore: subject key: %w", err)
	}
	var key []byte
	if err := s.pool.QueryRow(ctx, "SELECT key FROM privacy_keys WHERE name = 'subjects'").Scan(&key); err != nil {
		return nil, fmt.Errorf("pgstore: subject key: %w", err)
	}
	return key, nil
}

// RecordExport records an export in the audit log (entity "export", keyed by the
// subject): who exported whose data, and which linked ids were confirmed, by
// subject.
func (s *Store) RecordExport(ctx context.Context, actor, subject string, confirmed []string, unconfirmed int) error {
	after, err := json.Marshal(map[string]any{"subject": subject, "confirmed_links": nonNil(confirmed), "unconfirmed_links": unconfirmed})
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO audit_log (actor, action, entity, entity_key, after) VALUES ($1, 'export', 'export', $2, $3)`,
		actor, subject, after)
	if err != nil {
		return fmt.Errorf("pgstore: record export: %w", err)
	}
	return nil
}

// Policies returns the tables whose retention differs from the default, in months.
func (s *Store) Policies(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, "SELECT table_name, months FROM retention_policies")
	if err != nil {
		return nil, fmt.Errorf("pgstore: retention policies: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var t string
		var m int
		if err := rows.Scan(&t, &m); err != nil {
			return nil, fmt.Errorf("pgstore: retention policies: %w", err)
		}
		out[t] = m
	}
	return out, rows.Err()
}

// SetPolicy sets a table's retention (0: back to the default) and records the change
// in the audit log.
func (s *Store) SetPolicy(ctx context.Context, actor, table string, months int) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var before *int
		err := tx.QueryRow(ctx, "SELECT months FROM retention_policies WHERE table_name = $1 FOR UPDATE", table).Scan(&before)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if months == 0 {
			_, err = tx.Exec(ctx, "DELETE FROM retention_policies WHERE table_name = $1", table)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO retention_policies (table_name, months, updated_by) VALUES ($1, $2, $3)
				ON CONFLICT (table_name) DO UPDATE SET months = $2, updated_by = $3, updated_at = now()`, table, months, actor)
		}
		if err != nil {
			return err
		}
		doc := func(m *int) []byte {
			if m == nil || *m == 0 {
				return []byte(`{"months":"default"}`)
			}
			return []byte(fmt.Sprintf(`{"months":%d}`, *m))
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit_log (actor, action, entity, entity_key, before, after) VALUES ($1, 'update', 'retention', $2, $3, $4)`,
			actor, table, doc(before), doc(&months))
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: set retention of %s: %w", table, err)
	}
	return nil
}

// RecordDrop records a partition retention dropped.
func (s *Store) RecordDrop(ctx context.Context, d gdpr.Drop) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO retention_drops (at, table_name, partition, newest, rows) VALUES ($1, $2, $3, $4, $5)",
		d.At, d.Table, d.Partition, d.Newest, int64(d.Rows))
	if err != nil {
		return fmt.Errorf("pgstore: record drop: %w", err)
	}
	return nil
}

// Drops returns the newest drops first, at most limit.
func (s *Store) Drops(ctx context.Context, limit int) ([]gdpr.Drop, error) {
	rows, err := s.pool.Query(ctx, "SELECT at, table_name, partition, newest, rows FROM retention_drops ORDER BY at DESC, id DESC LIMIT $1", limit)
	if err != nil {
		return nil, fmt.Errorf("pgstore: drops: %w", err)
	}
	drops, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (gdpr.Drop, error) {
		var d gdpr.Drop
		var n int64
		err := row.Scan(&d.At, &d.Table, &d.Partition, &d.Newest, &n)
		d.Rows = uint64(n)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: drops: %w", err)
	}
	return drops, nil
}
