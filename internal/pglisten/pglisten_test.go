package pglisten_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liftlab/lift/internal/pglisten"
	"github.com/liftlab/lift/internal/testenv"
)

// TestWake: one wake-up once listening (changes made meanwhile notified nobody), then
// one per notification on the channel, none for another channel.
func TestWake(t *testing.T) {
	url := testenv.Postgres(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wake := make(chan struct{}, 1)
	go pglisten.Wake(ctx, url, "pglisten_test", wake, slog.New(slog.DiscardHandler))
	waitWake := func(what string) {
		t.Helper()
		select {
		case <-wake:
		case <-time.After(30 * time.Second):
			t.Fatalf("no wake-up %s", what)
		}
	}
	waitWake("after connecting")
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "NOTIFY other_channel"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "NOTIFY pglisten_test"); err != nil {
		t.Fatal(err)
	}
	waitWake("after NOTIFY")
	select {
	case <-wake:
		t.Error("woken again without a notification")
	case <-time.After(200 * time.Millisecond):
	}
}
