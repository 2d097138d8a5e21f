package chstore_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/liftlab/lift/ingest"
	"github.com/liftlab/lift/ingest/chsink"
	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/ingest/gdpr/chstore"
	"github.com/liftlab/lift/internal/testenv"
)

// On the local cluster, cityHash64 puts alice and bob on shard 1, erin, frank and
// anon-1 on shard 2 (the tests check it).

// setup stores a purchase and an exposure of alice, bob, erin and frank, three
// $identify events of alice and a page view of anon-1, and opens a Store.
func setup(t *testing.T, st storage) *chstore.Store {
	t.Helper()
	sink, err := chsink.Open(st.addr, st.db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	now := time.Now().UTC().Truncate(time.Second)
	var batch []ingest.Event
	for _, u := range []string{"alice", "bob", "erin", "frank"} {
		batch = append(batch,
			ingest.Event{ID: ingest.NewID(), Type: ingest.TypePurchase, UserID: u, Timestamp: now, ReceivedAt: now, Value: 3, Properties: json.RawMessage(`{"sku":"x"}`)},
			ingest.Event{ID: ingest.NewID(), Type: ingest.TypeExposure, UserID: u, Timestamp: now, ReceivedAt: now,
				Exposure: &ingest.Exposure{Experiment: "hero", Variant: "bold", AssignmentProbability: 0.5}})
	}
	// anon-1 is linked by a server key and by a client key, anon-2 by an event
	// without a source (as stored before sources were recorded).
	identify := func(anon string, src ingest.Source) ingest.Event {
		return ingest.Event{ID: ingest.NewID(), Type: ingest.TypeIdentify, UserID: "alice", Timestamp: now, ReceivedAt: now,
			Properties: json.RawMessage(`{"anonymous_id":"` + anon + `"}`), Source: src}
	}
	batch = append(batch, identify("anon-1", ingest.SourceServer), identify("anon-1", ingest.SourceClient), identify("anon-2", ""),
		ingest.Event{ID: ingest.NewID(), Type: ingest.TypePageView, UserID: "anon-1", Timestamp: now, ReceivedAt: now})
	if err := sink.Insert(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	s, err := chstore.Open(st.addr, st.db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestTablesAndExport(t *testing.T) {
	t.Parallel()
	onBoth(t, testTablesAndExport)
}

func testTablesAndExport(t *testing.T, st storage) {
	s := setup(t, st)
	ctx := context.Background()
	tables, err := s.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"events", "exposures", "first_exposures", "segment_changes"} {
		if !slices.Contains(tables, want) {
			t.Errorf("tables %v lack %s", tables, want)
		}
	}
	if slices.Contains(tables, "first_exposures_mv") || slices.Contains(tables, "daily_events") {
		t.Errorf("tables %v hold a view or a table without user_id", tables)
	}
	for _, name := range tables {
		if strings.HasSuffix(name, "_local") {
			t.Errorf("tables %v hold a cluster's local table", tables)
		}
	}
	linked, err := s.LinkedIDs(ctx, []string{"alice"})
	want := []gdpr.Link{{ID: "anon-1", Sources: []string{"client", "server"}}, {ID: "anon-2", Sources: []string{"unknown"}}}
	if err != nil || !cmp.Equal(linked, want) {
		t.Errorf("linked ids %v, %v; want %v", linked, err, want)
	}
	if len(linked) == 2 && (!linked[0].Trusted() || linked[1].Trusted()) {
		t.Errorf("trust of %v", linked)
	}
	x, err := s.Export(ctx, []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(x["events"]) != 4 || len(x["exposures"]) != 1 || len(x["first_exposures"]) != 1 || len(x["segment_changes"]) != 0 {
		t.Errorf("export %v", x)
	}
	for _, r := range x["first_exposures"] {
		if r["variant"] != "bold" || r["user_id"] != "alice" {
			t.Errorf("first exposure %v", r)
		}
	}
	if _, err := json.Marshal(x); err != nil {
		t.Errorf("export does not encode: %v", err)
	}

	// Two users, on the cluster on different shards: the export has all their rows.
	if st.cluster != nil {
		perNode := st.countEach(t, "SELECT count() FROM %s WHERE user_id = 'erin'", "events")
		if perNode[st.replicas()[0]] != 0 || perNode[st.replicas()[2]] != 1 {
			t.Fatalf("erin's events per node %v: want them on shard 2 only", perNode)
		}
	}
	x, err = s.Export(ctx, []string{"alice", "erin"})
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]map[any]int{}
	for table, rows := range x {
		users[table] = map[any]int{}
		for _, r := range rows {
			users[table][r["user_id"]]++
		}
	}
	wantUsers := map[string]map[any]int{
		"events":          {"alice": 4, "erin": 1},
		"exposures":       {"alice": 1, "erin": 1},
		"first_exposures": {"alice": 1, "erin": 1},
	}
	for table, want := range wantUsers {
		if !cmp.Equal(users[table], want) {
			t.Errorf("export of alice and erin, %s: rows by user %v, want %v", table, users[table], want)
		}
	}
}

func TestDeleteAndMutations(t *testing.T) {
	t.Parallel()
	onBoth(t, testDeleteAndMutations)
}

func testDeleteAndMutations(t *testing.T, st storage) {
	s := setup(t, st)
	ctx := context.Background()
	erased := []string{"alice", "erin"}
	const ofErased = "SELECT count() FROM %s WHERE user_id IN ('alice', 'erin')"
	st.sync(t)
	// On the cluster the erased users' rows are on both shards, on every replica.
	for r, n := range st.countEach(t, ofErased, "events") {
		if n == 0 {
			t.Fatalf("no events of alice or erin on %+v", r)
		}
	}
	lagging := ""
	if st.cluster != nil {
		// The second replica of shard 2 lags: it runs none of its replication
		// queue, so it neither executes the mutation nor fetches mutated parts.
		lagging = st.cluster.Nodes[3]
		execOn(t, lagging, st.db, "SYSTEM STOP REPLICATION QUEUES `"+st.db+"`.`events_local`")
		t.Cleanup(func() { execOn(t, lagging, st.db, "SYSTEM START REPLICATION QUEUES `"+st.db+"`.`events_local`") })
	}
	if err := s.StartDelete(ctx, "events", erased, "lift-erasure:job-1:1"); err != nil {
		t.Fatal(err)
	}
	if lagging != "" {
		const doneOn = "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = 'events_local' " +
			"AND position(command, 'lift-erasure:job-1:1') > 0 AND is_done"
		testenv.Eventually(t, time.Minute, "the mutation to be done on the three other replicas", func() bool {
			for _, node := range st.cluster.Nodes[:3] {
				if countOn(t, node, st.db, doneOn) != 1 {
					return false
				}
			}
			return true
		})
		id, done, err := s.FindMutation(ctx, "events", "lift-erasure:job-1:1")
		if err != nil || id == "" || done {
			t.Errorf("with a replica lagging: mutation %q, done %v, %v; want found, not done", id, done, err)
		}
		if n, err := s.Count(ctx, "events", erased); err != nil || n != 1 {
			t.Errorf("with a replica lagging: %d events of alice and erin left (%v), want erin's 1", n, err)
		}
		execOn(t, lagging, st.db, "SYSTEM START REPLICATION QUEUES `"+st.db+"`.`events_local`")
	}
	// Calling it again (a restart before the job saved its progress) starts nothing.
	if err := s.StartDelete(ctx, "events", erased, "lift-erasure:job-1:1"); err != nil {
		t.Fatal(err)
	}
	var id string
	testenv.Eventually(t, time.Minute, "the mutation to be done", func() bool {
		var done bool
		var err error
		id, done, err = s.FindMutation(ctx, "events", "lift-erasure:job-1:1")
		if err != nil || id == "" {
			t.Fatalf("mutation %q, %v", id, err)
		}
		return done
	})
	if st.cluster != nil && (!strings.HasPrefix(id, "1/") || !strings.Contains(id, ",2/")) {
		t.Errorf("mutation id %q: want one per shard", id)
	}
	if id, _, _ := s.FindMutation(ctx, "events", "lift-erasure:job-1:2"); id != "" {
		t.Errorf("another marker found mutation %s", id)
	}
	if n, err := s.Count(ctx, "events", erased); err != nil || n != 0 {
		t.Errorf("alice and erin have %d events left (%v)", n, err)
	}
	if n := st.count(t, "SELECT count() FROM events WHERE user_id IN ('bob', 'frank')"); n != 2 {
		t.Errorf("bob and frank have %d events, want 2", n)
	}
	// Every replica: no row of the erased users, the others' rows kept, the
	// mutation listed once, and no mutation command naming a user.
	st.sync(t)
	for r, n := range st.countEach(t, ofErased, "events") {
		if n != 0 {
			t.Errorf("%+v still holds %d events of alice or erin", r, n)
		}
	}
	for r, n := range st.countEach(t, "SELECT count() FROM %s WHERE user_id IN ('bob', 'frank')", "events") {
		if want := map[int]uint64{0: 2, 1: 1, 2: 1}[r.shard]; n != want {
			t.Errorf("%+v holds %d events of bob and frank, want %d", r, n, want)
		}
	}
	for r, n := range st.countEach(t, "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = '%s' "+
		"AND position(command, 'lift-erasure:job-1:1') > 0", "events") {
		if n != 1 {
			t.Errorf("%+v lists %d mutations of the erasure, want 1", r, n)
		}
	}
	for r, n := range st.countEach(t, "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = '%s' "+
		"AND (position(command, 'alice') > 0 OR position(command, 'erin') > 0)", "events") {
		if n != 0 {
			t.Errorf("a mutation on %+v names the user", r)
		}
	}
	if err := s.StartDelete(ctx, "events", erased, "bad'marker"); err == nil {
		t.Error("a marker that would break the query was accepted")
	}
}
