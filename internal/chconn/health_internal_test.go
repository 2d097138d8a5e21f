package chconn

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

var errRefused = errors.New("connection refused")

func TestReportErr(t *testing.T) {
	up := func(addr string) Replica { return Replica{Addr: addr} }
	down := func(addr string) Replica { return Replica{Addr: addr, Err: errRefused} }
	cluster := func(s1, s2 []Replica) Report {
		return Report{Cluster: "lift", Shards: []ShardHealth{{Num: 1, Replicas: s1}, {Num: 2, Replicas: s2}}}
	}
	tests := []struct {
		name      string
		report    Report
		shardDown bool
		want      []string // substrings of the error; none: no error
	}{
		{"all up", cluster([]Replica{up("a:1"), up("b:1")}, []Replica{up("c:1"), up("d:1")}), false, nil},
		{"one replica down", cluster([]Replica{down("a:1"), up("b:1")}, []Replica{up("c:1"), up("d:1")}), false,
			[]string{"replica a:1 of shard 1 down: connection refused"}},
		{"one replica read-only", cluster([]Replica{up("a:1"), up("b:1")}, []Replica{{Addr: "c:1", ReadOnly: 3}, up("d:1")}), false,
			[]string{"replica c:1 of shard 2 read-only (3 tables"}},
		{"a shard down", cluster([]Replica{up("a:1"), down("b:1")}, []Replica{down("c:1"), down("d:1")}), true,
			[]string{"shard 2 of cluster lift down (c:1: connection refused; d:1: connection refused)", "replica b:1 of shard 1 down"}},
		{"one server down", Report{Shards: []ShardHealth{{Num: 1, Replicas: []Replica{down("a:1")}}}}, true,
			[]string{"ClickHouse down (a:1: connection refused)"}},
		{"one server up", Report{Shards: []ShardHealth{{Num: 1, Replicas: []Replica{up("a:1")}}}}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.report.Err()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Err() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Err() = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Err() = %q, want it to contain %q", err, w)
				}
			}
			if errors.Is(err, ErrShardDown) != tt.shardDown {
				t.Errorf("errors.Is(%q, ErrShardDown) = %v, want %v", err, !tt.shardDown, tt.shardDown)
			}
		})
	}
}

// The metrics are the cached report's, one series per replica.
func TestHealthCollect(t *testing.T) {
	h := &Health{last: Report{Cluster: "lift", At: time.Now(), Shards: []ShardHealth{
		{Num: 1, Replicas: []Replica{{Addr: "a:1"}, {Addr: "b:1", Err: errRefused}}},
		{Num: 2, Replicas: []Replica{{Addr: "c:1", ReadOnly: 2}}},
	}}}
	want := map[string]float64{
		`lift_clickhouse_replica_up{replica="a:1",shard="1"}`:              1,
		`lift_clickhouse_replica_up{replica="b:1",shard="1"}`:              0,
		`lift_clickhouse_replica_up{replica="c:1",shard="2"}`:              1,
		`lift_clickhouse_replica_readonly_tables{replica="a:1",shard="1"}`: 0,
		`lift_clickhouse_replica_readonly_tables{replica="b:1",shard="1"}`: 0,
		`lift_clickhouse_replica_readonly_tables{replica="c:1",shard="2"}`: 2,
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(h)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"=\""+l.GetValue()+"\"")
			}
			got[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}
