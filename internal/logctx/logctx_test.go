package logctx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/liftlab/lift/internal/logctx"
)

func TestRequestIDInEveryRecord(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(logctx.Handler(slog.NewJSONHandler(&buf, nil))).With("role", "api").WithGroup("g")
	ctx := logctx.WithRequestID(context.Background(), "req-1")
	log.InfoContext(ctx, "with id", "k", 1)
	log.Info("without id")

	dec := json.NewDecoder(&buf)
	var first, second map[string]any
	if err := dec.Decode(&first); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&second); err != nil {
		t.Fatal(err)
	}
	// Inside a group the id lands in the group, like any attribute added later.
	g, _ := first["g"].(map[string]any)
	if first["role"] != "api" || g["request_id"] != "req-1" || g["k"] != 1.0 {
		t.Errorf("record with a request context: %v", first)
	}
	if _, has := second["request_id"]; has {
		t.Errorf("record without a request context carries an id: %v", second)
	}
	if logctx.RequestID(context.Background()) != "" {
		t.Error("empty context has an id")
	}
}
