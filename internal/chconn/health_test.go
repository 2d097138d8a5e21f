package chconn_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/internal/chconn"
	"github.com/liftlab/lift/internal/testenv"
)

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func newHealth(t *testing.T, addr, db, cluster string) *chconn.Health {
	t.Helper()
	h, err := chconn.NewHealth(addr, db, cluster)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// A server nothing answers on is a shard down, named with its address, and the
// report is reused until MaxAge.
func TestHealthNothingAnswers(t *testing.T) {
	addr := closedAddr(t)
	h := newHealth(t, addr, "lift", "")
	h.MaxAge = time.Hour
	r := h.Check(context.Background())
	err := r.Err()
	if !errors.Is(err, chconn.ErrShardDown) || !strings.Contains(err.Error(), "ClickHouse down ("+addr+": ") {
		t.Fatalf("Err() = %v, want ErrShardDown naming %s", err, addr)
	}
	if err := h.Available(context.Background()); !errors.Is(err, chconn.ErrShardDown) {
		t.Errorf("Available() = %v, want ErrShardDown", err)
	}
	if again := h.Check(context.Background()); !again.At.Equal(r.At) {
		t.Errorf("second Check probed again (at %v, first at %v): want the cached report", again.At, r.At)
	}
}

// One server that answers is healthy; with a second configured address that does
// not answer, that replica is down and the shard still up.
func TestHealthOneServer(t *testing.T) {
	t.Parallel()
	addr, db := testenv.ClickHouse(t)
	if err := newHealth(t, addr, db, "").Check(context.Background()).Err(); err != nil {
		t.Fatalf("one server up: %v", err)
	}
	dead := closedAddr(t)
	h := newHealth(t, addr+","+dead, db, "")
	err := h.Check(context.Background()).Err()
	if err == nil || errors.Is(err, chconn.ErrShardDown) || !strings.Contains(err.Error(), "replica "+dead+" of shard 1 down") {
		t.Errorf("Err() = %v, want replica %s down, not a shard", err, dead)
	}
	if err := h.Available(context.Background()); err != nil {
		t.Errorf("Available() = %v with one address answering, want nil", err)
	}
}

// On the healthy local cluster, the Health finds the cluster from the events table
// and probes every replica of both shards.
func TestHealthCluster(t *testing.T) {
	t.Parallel()
	c := testenv.ClickHouseCluster(t)
	for _, cluster := range []string{"", c.Name} {
		h := newHealth(t, c.Addr, c.DB, cluster)
		r := h.Check(context.Background())
		if err := r.Err(); err != nil {
			t.Fatalf("cluster %q: %v", cluster, err)
		}
		var got []string
		for _, s := range r.Shards {
			if len(s.Replicas) != 2 {
				t.Errorf("shard %d has %d replicas, want 2", s.Num, len(s.Replicas))
			}
			for _, rep := range s.Replicas {
				got = append(got, rep.Addr)
			}
		}
		if r.Cluster != c.Name || len(r.Shards) != 2 || !slices.Equal(got, c.Nodes) {
			t.Errorf("cluster %q: report of cluster %q with replicas %v, want %s with %v", cluster, r.Cluster, got, c.Name, c.Nodes)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(h)
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != "lift_clickhouse_replica_up" {
				continue
			}
			if len(f.GetMetric()) != len(c.Nodes) {
				t.Errorf("%d lift_clickhouse_replica_up series, want %d", len(f.GetMetric()), len(c.Nodes))
			}
			for _, m := range f.GetMetric() {
				if m.GetGauge().GetValue() != 1 {
					t.Errorf("%v: %v, want 1", m.GetLabel(), m.GetGauge().GetValue())
				}
			}
		}
	}
}
