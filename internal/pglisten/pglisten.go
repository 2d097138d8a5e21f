// Package pglisten turns PostgreSQL notifications into wake-ups: processes that keep
// a copy of a table in memory (segment memberships, features, recommender models)
// LISTEN on the channel its trigger notifies and fetch what changed when woken.
package pglisten

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Wake LISTENs on channel and sends on wake (without blocking: one pending wake-up
// is enough) after every notification, and once each time it has connected, since
// changes made while it was connecting notified nobody. It reconnects a second
// after losing the connection, until ctx ends.
func Wake(ctx context.Context, connString, channel string, wake chan<- struct{}, log *slog.Logger) {
	for ctx.Err() == nil {
		conn, err := pgx.Connect(ctx, connString)
		if err == nil {
			if _, err = conn.Exec(ctx, "LISTEN "+channel); err == nil {
				// Changes made while this connection was being set up sent their
				// NOTIFY to nobody: fetch once now.
				select {
				case wake <- struct{}{}:
				default:
				}
				for {
					if _, err = conn.WaitForNotification(ctx); err != nil {
						break
					}
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			}
			conn.Close(context.WithoutCancel(ctx))
		}
		if ctx.Err() != nil {
			return
		}
		log.Debug("listener reconnecting", "channel", channel, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
