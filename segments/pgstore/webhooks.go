package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/liftlab/lift/internal/derrors"
	"github.com/liftlab/lift/segments/webhooks"
)

// Webhook configuration: every change is audited, without the secret.

// CreateWebhook stores a new webhook, generating its secret when it has none, and
// returns it with the secret only if generated. It returns a
// *derrors.ValidationError or derrors.ErrConflict (key taken).
func (s *Store) CreateWebhook(ctx context.Context, actor string, w webhooks.Webhook) (webhooks.Webhook, error) {
	if err := w.Validate(s.WebhookGuard); err != nil {
		return webhooks.Webhook{}, err
	}
	generated := w.Secret == ""
	if generated {
		w.Secret = webhooks.NewSecret()
	}
	w.Segments = nonNil(w.Segments)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO segment_webhooks (key, url, secret, segments, enabled) VALUES ($1, $2, $3, $4, $5)`,
			w.Key, w.URL, w.Secret, w.Segments, w.IsEnabled())
		if err != nil {
			return err
		}
		return auditWebhook(ctx, tx, actor, "create", w.Key, nil, &w)
	})
	if err != nil {
		return webhooks.Webhook{}, fmt.Errorf("pgstore: create webhook %q: %w", w.Key, translate(err))
	}
	if !generated {
		w.Secret = ""
	}
	return w, nil
}

// UpdateWebhook replaces a webhook's URL, segments and enabled flag, and its secret
// when w has one. It returns derrors.ErrNotFound or a *derrors.ValidationError.
func (s *Store) UpdateWebhook(ctx context.Context, actor, key string, w webhooks.Webhook) (webhooks.Webhook, error) {
	if w.Key == "" {
		w.Key = key
	}
	if w.Key != key {
		return webhooks.Webhook{}, derrors.Invalid("key", fmt.Sprintf("must match the key in the URL (%q)", key))
	}
	if err := w.Validate(s.WebhookGuard); err != nil {
		return webhooks.Webhook{}, err
	}
	w.Segments = nonNil(w.Segments)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := getWebhook(ctx, tx, key, true)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE segment_webhooks SET url = $2, segments = $3, enabled = $4,
			secret = coalesce(nullif($5, ''), secret), updated_at = now() WHERE key = $1`,
			key, w.URL, w.Segments, w.IsEnabled(), w.Secret)
		if err != nil {
			return err
		}
		return auditWebhook(ctx, tx, actor, "update", key, &before, &w)
	})
	if err != nil {
		return webhooks.Webhook{}, fmt.Errorf("pgstore: update webhook %q: %w", key, translate(err))
	}
	w.Secret = ""
	return w, nil
}

// DeleteWebhook removes a webhook and its outbox. It returns derrors.ErrNotFound.
func (s *Store) DeleteWebhook(ctx context.Context, actor, key string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := getWebhook(ctx, tx, key, true)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM segment_webhooks WHERE key = $1", key); err != nil {
			return err
		}
		return auditWebhook(ctx, tx, actor, "delete", key, &before, nil)
	})
	if err != nil {
		return fmt.Errorf("pgstore: delete webhook %q: %w", key, translate(err))
	}
	return nil
}

// GetWebhook returns a webhook without its secret, or derrors.ErrNotFound.
func (s *Store) GetWebhook(ctx context.Context, key string) (webhooks.Webhook, error) {
	w, err := getWebhook(ctx, s.pool, key, false)
	if err != nil {
		return webhooks.Webhook{}, fmt.Errorf("pgstore: get webhook %q: %w", key, translate(err))
	}
	return w, nil
}

// ListWebhooks returns every webhook, without secrets, by key.
func (s *Store) ListWebhooks(ctx context.Context) ([]webhooks.Webhook, error) {
	rows, err := s.pool.Query(ctx, "SELECT key, url, segments, enabled FROM segment_webhooks ORDER BY key")
	if err != nil {
		return nil, fmt.Errorf("pgstore: list webhooks: %w", err)
	}
	ws, err := pgx.CollectRows(rows, scanWebhook)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list webhooks: %w", err)
	}
	return ws, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func getWebhook(ctx context.Context, q querier, key string, lock bool) (webhooks.Webhook, error) {
	sql := "SELECT key, url, segments, enabled FROM segment_webhooks WHERE key = $1"
	if lock {
		sql += " FOR UPDATE"
	}
	var w webhooks.Webhook
	var enabled bool
	err := q.QueryRow(ctx, sql, key).Scan(&w.Key, &w.URL, &w.Segments, &enabled)
	w.Enabled = &enabled
	return w, err
}

func scanWebhook(row pgx.CollectableRow) (webhooks.Webhook, error) {
	var w webhooks.Webhook
	var enabled bool
	err := row.Scan(&w.Key, &w.URL, &w.Segments, &enabled)
	w.Enabled = &enabled
	return w, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// auditWebhook records a change of webhook configuration; the secret is left out
// (only whether it was set).
func auditWebhook(ctx context.Context, tx pgx.Tx, actor, action, key string, before, after *webhooks.Webhook) error {
	doc := func(w *webhooks.Webhook) []byte {
		if w == nil {
			return nil
		}
		c := *w
		c.Secret = ""
		b, _ := json.Marshal(c)
		return b
	}
	_, err := tx.Exec(ctx, "INSERT INTO audit_log (actor, action, entity, entity_key, before, after) VALUES ($1, $2, 'webhook', $3, $4, $5)",
		actor, action, key, doc(before), doc(after))
	return err
}

func translate(err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return derrors.ErrNotFound
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return derrors.ErrConflict
	}
	return err
}

// DeadLetters lists a webhook's dead letters, oldest first, at most limit. It returns
// derrors.ErrNotFound if there is no such webhook.
func (s *Store) DeadLetters(ctx context.Context, key string, limit int) ([]webhooks.DeadLetter, error) {
	if _, err := s.GetWebhook(ctx, key); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT id, kind, segment, user_id, at, expires_at, attempts, coalesce(last_error, ''), dead_at
		FROM segment_webhook_outbox WHERE webhook = $1 AND dead_at IS NOT NULL ORDER BY id LIMIT $2`, key, limit)
	if err != nil {
		return nil, fmt.Errorf("pgstore: dead letters of webhook %q: %w", key, err)
	}
	dls, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (webhooks.DeadLetter, error) {
		var d webhooks.DeadLetter
		var c outboxChange
		err := row.Scan(&d.ID, &c.kind, &c.segment, &c.userID, &c.at, &c.expires, &d.Attempts, &d.LastError, &d.DeadAt)
		d.Change = c.change()
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: dead letters of webhook %q: %w", key, err)
	}
	return dls, nil
}

// Redeliver makes a webhook's dead letters due again, with their attempts reset, and
// returns how many. It returns derrors.ErrNotFound if there is no such webhook.
func (s *Store) Redeliver(ctx context.Context, actor, key string) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := getWebhook(ctx, tx, key, true); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE segment_webhook_outbox SET dead_at = NULL, attempts = 0, next_attempt_at = now(),
			locked_until = NULL WHERE webhook = $1 AND dead_at IS NOT NULL`, key)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		_, err = tx.Exec(ctx, "INSERT INTO audit_log (actor, action, entity, entity_key, after) VALUES ($1, 'redeliver', 'webhook', $2, $3)",
			actor, key, fmt.Appendf(nil, `{"requeued":%d}`, n))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: redeliver webhook %q: %w", key, translate(err))
	}
	return n, nil
}

// The outbox, as webhooks.Store.

type outboxChange struct {
	kind, segment, userID string
	at                    time.Time
	expires               *time.Time
}

func (c outboxChange) change() webhooks.Change {
	ch := webhooks.Change{ID: webhooks.ChangeID(c.segment, c.userID, c.kind, c.at), Type: c.kind,
		Segment: c.segment, UserID: c.userID, At: c.at.UTC()}
	if c.expires != nil {
		e := c.expires.UTC()
		ch.ExpiresAt = &e
	}
	return ch
}

// Outbox returns the webhook outbox, for a webhooks.Dispatcher.
func (s *Store) Outbox() webhooks.Store { return outbox{s} }

type outbox struct{ s *Store }

func (o outbox) Due(ctx context.Context) ([]string, error) {
	rows, err := o.s.pool.Query(ctx, `SELECT key FROM segment_webhooks w WHERE enabled AND EXISTS (
		SELECT 1 FROM segment_webhook_outbox o WHERE o.webhook = w.key AND o.dead_at IS NULL
		AND o.next_attempt_at <= now() AND (o.locked_until IS NULL OR o.locked_until < now()))`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: due webhooks: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgstore: due webhooks: %w", err)
	}
	return keys, nil
}

func (o outbox) Claim(ctx context.Context, webhook string, limit int, lease time.Duration) (webhooks.Endpoint, []webhooks.Delivery, error) {
	ep := webhooks.Endpoint{Key: webhook}
	var batch []webhooks.Delivery
	err := pgx.BeginFunc(ctx, o.s.pool, func(tx pgx.Tx) error {
		var enabled bool
		err := tx.QueryRow(ctx, "SELECT url, secret, enabled FROM segment_webhooks WHERE key = $1", webhook).Scan(&ep.URL, &ep.Secret, &enabled)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && !enabled {
			return nil // deleted or disabled meanwhile: nothing to send
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `WITH c AS (
				SELECT id FROM segment_webhook_outbox
				WHERE webhook = $1 AND dead_at IS NULL AND next_attempt_at <= now()
				  AND (locked_until IS NULL OR locked_until < now())
				ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
			UPDATE segment_webhook_outbox o SET locked_until = now() + $3::interval FROM c WHERE o.id = c.id
			RETURNING o.id, o.attempts, o.kind, o.segment, o.user_id, o.at, o.expires_at`, webhook, limit, lease)
		if err != nil {
			return err
		}
		batch, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (webhooks.Delivery, error) {
			var d webhooks.Delivery
			var c outboxChange
			err := row.Scan(&d.ID, &d.Attempts, &c.kind, &c.segment, &c.userID, &c.at, &c.expires)
			d.Change = c.change()
			return d, err
		})
		return err
	})
	if err != nil {
		return ep, nil, fmt.Errorf("pgstore: claim deliveries of webhook %q: %w", webhook, err)
	}
	slices.SortFunc(batch, func(a, b webhooks.Delivery) int { return int(a.ID - b.ID) })
	return ep, batch, nil
}

func (o outbox) Delivered(ctx context.Context, ids []int64) error {
	if _, err := o.s.pool.Exec(ctx, "DELETE FROM segment_webhook_outbox WHERE id = ANY($1)", ids); err != nil {
		return fmt.Errorf("pgstore: record %d webhook deliveries: %w", len(ids), err)
	}
	return nil
}

func (o outbox) Failed(ctx context.Context, fails []webhooks.Failure, reason string) error {
	ids := make([]int64, len(fails))
	retry := make([]time.Time, len(fails))
	dead := make([]bool, len(fails))
	for i, f := range fails {
		ids[i], retry[i], dead[i] = f.ID, f.RetryAt, f.Dead
	}
	_, err := o.s.pool.Exec(ctx, `UPDATE segment_webhook_outbox o SET attempts = o.attempts + 1, last_error = $4,
			locked_until = NULL, next_attempt_at = f.retry_at, dead_at = CASE WHEN f.dead THEN now() END
		FROM unnest($1::bigint[], $2::timestamptz[], $3::boolean[]) AS f(id, retry_at, dead) WHERE o.id = f.id`,
		ids, retry, dead, reason)
	if err != nil {
		return fmt.Errorf("pgstore: record %d failed webhook deliveries: %w", len(fails), err)
	}
	return nil
}

func (o outbox) Counts(ctx context.Context) (pending, dead int64, err error) {
	err = o.s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE dead_at IS NULL), count(*) FILTER (WHERE dead_at IS NOT NULL)
		FROM segment_webhook_outbox`).Scan(&pending, &dead)
	if err != nil {
		return 0, 0, fmt.Errorf("pgstore: count webhook outbox: %w", err)
	}
	return pending, dead, nil
}
