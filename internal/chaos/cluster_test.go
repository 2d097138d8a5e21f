package chaos_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/ingest/amqpbus"
	"github.com/liftlab/lift/internal/chaos"
	"github.com/liftlab/lift/internal/testenv"
	"github.com/liftlab/lift/migrations"
)

// The fault tests of the ClickHouse cluster (docs/ops/chaos.md, 10 and 11) kill
// nodes of the shared local cluster, so they run only with LIFT_TEST_CLUSTER_FAULTS=1,
// in `make test`'s serial step. lift runs as an api and an ingest process on a
// database of the cluster, with events sent to the collector and stored through the
// Distributed tables.

// clusterFixture is newFixture on a fresh database of the cluster.
func clusterFixture(t *testing.T, c *chaos.Cluster, env map[string]string) *fixture {
	t.Helper()
	env["LIFT_CLICKHOUSE_ADDR"], env["LIFT_CLICKHOUSE_DB"], env["LIFT_CLICKHOUSE_CLUSTER"] = c.Addr, c.DB, c.Name
	return newFixture(t, env)
}

type readyzAnswer struct {
	Code   int
	Status string
	Checks map[string]string
}

func readyz(url string) readyzAnswer {
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return readyzAnswer{}
	}
	defer resp.Body.Close()
	a := readyzAnswer{Code: resp.StatusCode}
	_ = json.NewDecoder(resp.Body).Decode(&a)
	return a
}

// storedOnce checks what the cluster holds once every node is back: every
// acknowledged event once through the Distributed table with FINAL (count and
// distinct ids), and, once the ingest process has nothing left to insert and after
// SYSTEM SYNC REPLICA, both replicas of each shard equal and the shards adding up to
// the events acknowledged. It returns the figures and the replicas' sums.
func storedOnce(t *testing.T, c *chaos.Cluster, f *fixture, ingest *chaos.Lift, r chaos.Result) (chaos.Figures, []chaos.ReplicaSums) {
	t.Helper()
	fig, _ := chaos.Stored(t, c.Addr, c.DB, r.IDs, 5*time.Minute)
	// Redeliveries may still be on their way after the last new event is stored.
	last := -1.0
	testenv.Eventually(t, 2*time.Minute, "lift.ingest empty and no more inserts", func() bool {
		time.Sleep(2 * time.Second)
		n, err := ingest.Metric("lift_events_inserted_total", "")
		settled := err == nil && n == last && testenv.QueueDepth(t, f.env["LIFT_AMQP_URL"], amqpbus.IngestQueue) == 0
		last = n
		return settled
	})
	c.SyncReplicas(t)
	db := migrations.OpenClickHouse(c.Addr, c.DB)
	defer db.Close()
	var rows, ids uint64
	if err := db.QueryRow("SELECT count(), uniqExact(event_id) FROM events FINAL").Scan(&rows, &ids); err != nil {
		t.Fatal(err)
	}
	if rows != uint64(fig.Accepted) || ids != uint64(fig.Accepted) {
		t.Errorf("events FINAL through the Distributed table: %d rows, %d distinct ids; want %d and %d", rows, ids, fig.Accepted, fig.Accepted)
	}
	sums := c.Sums()
	var total uint64
	for i := 0; i+1 < len(sums); i += 2 {
		a, b := sums[i], sums[i+1]
		if a.Node.Shard != b.Node.Shard || a.Rows != b.Rows || a.IDs != b.IDs || a.Checksum != b.Checksum {
			t.Errorf("replicas differ after SYSTEM SYNC REPLICA: %s; %s", a, b)
		}
		total += a.Rows
	}
	if total != uint64(fig.Accepted) {
		t.Errorf("the shards hold %d rows in all (%v), want %d", total, sums, fig.Accepted)
	}
	return fig, sums
}

// 10. A replica killed with SIGKILL during 200,000 events and restarted: ch1, the
// first replica of shard 1, where Distributed inserts of that shard go first
// (load_balancing in_order) and the node lift's connections start with. The ingest
// process's /readyz says degraded naming the replica while it is down; every
// acknowledged event is stored once, and both replicas of each shard end up equal.
func TestClusterReplicaKilled(t *testing.T) {
	c := chaos.KillableCluster(t)
	f := clusterFixture(t, c, map[string]string{})
	api := chaos.StartLift(t, "api", "api", f.env)
	ingest := chaos.StartLift(t, "ingest", "ingest", f.env)
	victim := c.Servers[0]
	s := &chaos.Stream{URL: api.URL, Key: f.clientKey, Events: 200_000, Rate: 30}
	done := stream(t, s)
	testenv.Eventually(t, 5*time.Minute, "a third of the stream", func() bool { return s.Accepted() >= s.Events/3 })
	acceptedAtKill := s.Accepted()
	c.Kill(victim)
	killedAt := time.Now()
	if c.Servers[1].Shard != victim.Shard {
		t.Fatalf("%s and %s are not replicas of one shard", victim.Name, c.Servers[1].Name)
	}
	var ready readyzAnswer
	testenv.Eventually(t, 30*time.Second, "ingest /readyz degraded naming "+victim.Addr, func() bool {
		ready = readyz(ingest.URL)
		return ready.Code == http.StatusOK && ready.Status == "degraded" && strings.Contains(ready.Checks["clickhouse"], victim.Addr)
	})
	up, err := ingest.Metric("lift_clickhouse_replica_up", `replica="`+victim.Addr+`"`)
	if err != nil || up != 0 {
		t.Errorf("lift_clickhouse_replica_up of %s while it is down: %v (%v), want 0", victim.Addr, up, err)
	}
	// Down for longer than the nodes' ZooKeeper session (10 s), as a real crash.
	time.Sleep(15*time.Second - time.Since(killedAt))
	insertedAtRestart, _ := ingest.Metric("lift_events_inserted_total", "")
	restartTook := c.Up()
	restarted := time.Now()
	down := restarted.Sub(killedAt)
	caughtUp := c.CatchUp(victim, c.Servers[1], 3*time.Minute)
	<-done
	r := s.Result()
	fig, sums := storedOnce(t, c, f, ingest, r)
	fig.Scenario = "10-cluster-replica-killed"
	fig.Recover = caughtUp
	testenv.Eventually(t, time.Minute, "ingest /readyz ok again", func() bool { return readyz(ingest.URL).Status == "ok" })
	fig.Notes = []string{fmt.Sprintf("%s killed after %d of %d events accepted (%d inserted by its restart), down %s (restart took %s); /readyz of ingest meanwhile: %d %s %q; replicas after SYSTEM SYNC REPLICA: %v; statuses %v; recover = restarted replica holds every event its peer held at the restart",
		victim.Name, acceptedAtKill, s.Events, int(insertedAtRestart), down.Round(100*time.Millisecond), restartTook.Round(100*time.Millisecond),
		ready.Code, ready.Status, ready.Checks["clickhouse"], sums, r.Statuses(time.Time{}, time.Now()))}
	accept(t, fig, s.Events, r)
	if caughtUp < 0 {
		t.Errorf("%s did not catch up within 3 minutes of its restart", victim.Name)
	}
}

// 11. A whole shard down: both replicas of shard 2 killed for 30 s (2 minutes with
// LIFT_CHAOS=full) against a broker whose consumer_timeout (10 s) the outage
// outlasts. The collector answers only 202, the ingest process's /readyz answers
// 503 naming the shard while the api's says degraded, the consumers wait for the
// shard instead of cycling through consumer timeouts, nothing is dead-lettered, and
// everything is stored once after the shard is back.
func TestClusterShardDown(t *testing.T) {
	c := chaos.KillableCluster(t)
	rabbit := chaos.StartRabbit(t, 10*time.Second)
	const consumers = 2
	f := clusterFixture(t, c, map[string]string{"LIFT_AMQP_URL": rabbit.URL("/"), "LIFT_INGEST_CONSUMERS": fmt.Sprint(consumers)})
	api := chaos.StartLift(t, "api", "api", f.env)
	ingest := chaos.StartLift(t, "ingest", "ingest", f.env)
	outage := chaos.Size(30*time.Second, 2*time.Minute)
	// 2,000 events/s from 10 s before the outage to 20 s after it.
	s := &chaos.Stream{URL: api.URL, Key: f.clientKey, Events: int(outage.Seconds()+30) * 2000, Rate: 20}
	done := stream(t, s)
	if untilInserted(ingest, 0, time.Now(), time.Minute) < 0 {
		t.Fatal("nothing inserted before the outage")
	}
	time.Sleep(10 * time.Second)
	var shard []chaos.Node
	for _, n := range c.Servers {
		if n.Shard == 2 {
			shard = append(shard, n)
		}
	}
	c.Kill(shard...)
	killedAt := time.Now()
	var ingestReady, apiReady readyzAnswer
	testenv.Eventually(t, 30*time.Second, "ingest /readyz 503 naming shard 2", func() bool {
		ingestReady = readyz(ingest.URL)
		return ingestReady.Code == http.StatusServiceUnavailable && strings.Contains(ingestReady.Checks["clickhouse"], "shard 2 of cluster "+c.Name+" down")
	})
	testenv.Eventually(t, 30*time.Second, "api /readyz 200 degraded", func() bool {
		apiReady = readyz(api.URL)
		return apiReady.Code == http.StatusOK && apiReady.Status == "degraded"
	})
	time.Sleep(outage - time.Since(killedAt))
	before, err := ingest.Metric("lift_events_inserted_total", "")
	if err != nil {
		t.Fatal(err)
	}
	restartTook := c.Up()
	restarted := time.Now()
	down := restarted.Sub(killedAt)
	recovered := untilInserted(ingest, before, restarted, 2*time.Minute)
	<-done
	r := s.Result()
	fig, _ := storedOnce(t, c, f, ingest, r)
	fig.Scenario = "11-cluster-shard-down"
	fig.Recover = recovered
	during := r.Statuses(killedAt, restarted)
	restarts, _ := ingest.Metric("lift_consumer_restarts_total", "")
	deadLettered, _ := ingest.Metric("lift_events_dead_lettered_total", "")
	dead := testenv.QueueDepth(t, rabbit.URL("/"), amqpbus.DeadQueue)
	fig.Notes = []string{fmt.Sprintf("shard 2 (%s, %s) down %s (restart took %s), consumer_timeout 10 s; collector answers meanwhile %v; /readyz ingest %d %q, api %d %s; consumer restarts %d; dead-lettered %d, lift.dead %d; recover = shard up to the first insert",
		shard[0].Name, shard[1].Name, down.Round(100*time.Millisecond), restartTook.Round(100*time.Millisecond), during,
		ingestReady.Code, ingestReady.Checks["clickhouse"], apiReady.Code, apiReady.Status, int(restarts), int(deadLettered), dead)}
	accept(t, fig, s.Events, r)
	if during[http.StatusAccepted] == 0 || len(during) != 1 {
		t.Errorf("collector while shard 2 was down: %v, want only 202", during)
	}
	if deadLettered != 0 || dead != 0 {
		t.Errorf("dead-lettered %v (metric), lift.dead holds %d: want 0 and 0", deadLettered, dead)
	}
	// Each consumer's session may end once, when the broker's timeout takes back the
	// batch it held at the kill; after that it waits for the shard.
	if restarts > consumers {
		t.Errorf("%v consumer restarts during the outage, want at most %d: the consumers keep taking deliveries they cannot store", restarts, consumers)
	}
	if recovered < 0 {
		t.Error("nothing inserted within 2 minutes of the shard's restart")
	}
}
