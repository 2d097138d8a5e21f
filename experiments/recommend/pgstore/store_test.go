package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liftlab/lift/experiments/recommend"
	"github.com/liftlab/lift/experiments/recommend/chstore"
	"github.com/liftlab/lift/experiments/recommend/pgstore"
	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/internal/testenv"
)

// TestTrainerOnScheduleAndOnRequest trains from ClickHouse events into Postgres on
// the real services: a recommender without a model is trained at once, then not
// again until its retrain interval passes or training is asked for; decision
// processes following the models get every new version within a second; only the
// last KeepVersions versions are kept.
func TestTrainerOnScheduleAndOnRequest(t *testing.T) {
	t.Parallel()
	addr, db := testenv.ClickHouse(t)
	pgURL := testenv.Postgres(t)
	pool, err := pgxpool.New(context.Background(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	sink, err := chsink.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	now := time.Now().UTC()
	var events []ingest.Event
	view := func(user, sku string) {
		events = append(events, ingest.Event{ID: ingest.NewID(), Type: "product_view", UserID: user, Timestamp: now, ReceivedAt: now,
			Properties: json.RawMessage(`{"sku":"` + sku + `"}`)})
	}
	for u := range 10 {
		user := string(rune('a' + u))
		if u%2 == 0 {
			view(user, "lamp")
			view(user, "shade")
		} else {
			view(user, "mug")
			view(user, "saucer")
		}
	}
	if err := sink.Insert(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	source, err := chstore.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	store := pgstore.New(pool)
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	spec := recommend.Spec{Key: "similar", EventTypes: []string{"product_view"}, ItemProperty: "sku",
		HalfLife: 7 * 24 * time.Hour, History: 24 * time.Hour, RetrainEvery: time.Hour, Neighbours: 10}
	trained := make(chan int64, 10)
	trainer := &recommend.Trainer{
		Recommenders: func(context.Context) ([]recommend.Spec, error) { return []recommend.Spec{spec}, nil },
		Source:       source, Store: store, Log: discard, Poll: 50 * time.Millisecond,
		Observe: func(key string, m *recommend.Model, err error) {
			if err != nil {
				t.Errorf("training %s: %v", key, err)
				return
			}
			trained <- m.Version
		},
	}
	models := recommend.NewModels(store)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go trainer.Run(ctx)
	go pgstore.Follow(ctx, pgURL, models, time.Minute, discard)

	waitModel := func(version int64) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, fmt.Sprintf("model version %d in the decision process", version), func() bool {
			m := models.Get("similar")
			return m != nil && m.Version == version
		})
	}
	if v := <-trained; v != 1 {
		t.Fatalf("first model version %d", v)
	}
	waitModel(1)
	m := models.Get("similar")
	if got := m.Recommend([]string{"lamp"}, 1, nil, false); len(got) != 1 || got[0].Item != "shade" {
		t.Errorf("loaded model recommends %v for lamp", got)
	}
	if m.Stats.Users != 10 || m.Stats.Items != 4 {
		t.Errorf("stats %+v", m.Stats)
	}
	select {
	case v := <-trained:
		t.Fatalf("trained again (version %d) before it was due", v)
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := store.RequestTraining(ctx, "similar", "test"); err != nil {
		t.Fatal(err)
	}
	if v := <-trained; v != 2 {
		t.Fatalf("requested model version %d", v)
	}
	waitModel(2)
	// The trainer clears the request after it announces the model: wait for it.
	var reqs map[string]time.Time
	if !testenv.Poll(10*time.Second, func() bool { reqs, err = store.TrainRequests(ctx); return err == nil && len(reqs) == 0 }) {
		t.Fatalf("requests left: %v %v", reqs, err)
	}
	cancel()

	for range pgstore.KeepVersions + 2 {
		if _, err := store.Save(context.Background(), "similar", m); err != nil {
			t.Fatal(err)
		}
	}
	versions, _, err := store.Versions(context.Background(), "similar")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != pgstore.KeepVersions || versions[0].Version != 9 || versions[0].Bytes == 0 || versions[0].Stats.Users != 10 {
		t.Errorf("versions kept: %+v", versions)
	}
}
