package migrations

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClusterRewrite(t *testing.T) {
	s := newClusterSchema("lift", "db")
	steps := []struct {
		name, in string
		want     []string
	}{
		{
			name: "create with user_id",
			in: `CREATE TABLE IF NOT EXISTS events (
    event_id UUID,
    user_id  String,
    props    String DEFAULT 'a, (b'' ]',
    bucket   UInt16 MATERIALIZED toUInt16(cityHash64(user_id) % 65536)
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (type, bucket, user_id)
SETTINGS index_granularity = 256`,
			want: []string{
				"CREATE TABLE IF NOT EXISTS `db`.`events_local` ON CLUSTER `lift` ( event_id UUID, user_id String, props String DEFAULT 'a, (b'' ]', bucket UInt16 MATERIALIZED toUInt16(cityHash64(user_id) % 65536) ) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/events_local', '{replica}', received_at) PARTITION BY toYYYYMM(ts) ORDER BY (type, bucket, user_id) SETTINGS index_granularity = 256",
				"CREATE TABLE IF NOT EXISTS `db`.`events` ON CLUSTER `lift` (event_id UUID, user_id String, props String DEFAULT 'a, (b'' ]', bucket UInt16 ALIAS toUInt16(cityHash64(user_id) % 65536)) ENGINE = Distributed(`lift`, `db`, `events_local`, cityHash64(user_id))",
			},
		},
		{
			name: "create without user_id or engine arguments",
			in:   "CREATE TABLE nodes (experiment String, node UInt32) ENGINE = ReplacingMergeTree ORDER BY (experiment, node)",
			want: []string{
				"CREATE TABLE `db`.`nodes_local` ON CLUSTER `lift` (experiment String, node UInt32) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/nodes_local', '{replica}') ORDER BY (experiment, node)",
				"CREATE TABLE `db`.`nodes` ON CLUSTER `lift` (experiment String, node UInt32) ENGINE = Distributed(`lift`, `db`, `nodes_local`, cityHash64(experiment, node))",
			},
		},
		{
			name: "view reads and writes local tables",
			in:   "CREATE MATERIALIZED VIEW IF NOT EXISTS counts_mv TO nodes AS\nSELECT experiment, count() AS node FROM events GROUP BY experiment",
			want: []string{
				"CREATE MATERIALIZED VIEW IF NOT EXISTS `db`.`counts_mv` ON CLUSTER `lift` TO `db`.`nodes_local` AS SELECT experiment, count() AS node FROM `db`.`events_local` GROUP BY experiment",
			},
		},
		{
			name: "add columns recreates the distributed table",
			in:   "ALTER TABLE nodes ADD COLUMN packed String AFTER experiment, ADD COLUMN n UInt8 DEFAULT 1",
			want: []string{
				"/* per shard */ ALTER TABLE `db`.`nodes_local` ADD COLUMN packed String AFTER experiment, ADD COLUMN n UInt8 DEFAULT 1",
				"DROP TABLE IF EXISTS `db`.`nodes` ON CLUSTER `lift`",
				"CREATE TABLE `db`.`nodes` ON CLUSTER `lift` (experiment String, packed String, node UInt32, n UInt8 DEFAULT 1) ENGINE = Distributed(`lift`, `db`, `nodes_local`, cityHash64(experiment, node))",
			},
		},
		{
			name: "drop column",
			in:   "ALTER TABLE nodes DROP COLUMN packed",
			want: []string{
				"/* per shard */ ALTER TABLE `db`.`nodes_local` DROP COLUMN packed",
				"DROP TABLE IF EXISTS `db`.`nodes` ON CLUSTER `lift`",
				"CREATE TABLE `db`.`nodes` ON CLUSTER `lift` (experiment String, node UInt32, n UInt8 DEFAULT 1) ENGINE = Distributed(`lift`, `db`, `nodes_local`, cityHash64(experiment, node))",
			},
		},
		{
			name: "mutation runs on the local tables",
			in:   "ALTER TABLE events UPDATE props = props WHERE 1",
			want: []string{"/* per shard */ ALTER TABLE `db`.`events_local` UPDATE props = props WHERE 1"},
		},
		{
			name: "truncate",
			in:   "TRUNCATE TABLE nodes",
			want: []string{"TRUNCATE TABLE `db`.`nodes_local` ON CLUSTER `lift`"},
		},
		{
			name: "rename swaps local tables and recreates distributed ones",
			in:   "RENAME TABLE nodes TO nodes_old, events TO nodes",
			want: []string{
				"DROP TABLE IF EXISTS `db`.`nodes` ON CLUSTER `lift`",
				"DROP TABLE IF EXISTS `db`.`events` ON CLUSTER `lift`",
				"RENAME TABLE `db`.`nodes_local` TO `db`.`nodes_old_local`, `db`.`events_local` TO `db`.`nodes_local` ON CLUSTER `lift`",
				"CREATE TABLE `db`.`nodes_old` ON CLUSTER `lift` (experiment String, node UInt32, n UInt8 DEFAULT 1) ENGINE = Distributed(`lift`, `db`, `nodes_old_local`, cityHash64(experiment, node))",
				"CREATE TABLE `db`.`nodes` ON CLUSTER `lift` (event_id UUID, user_id String, props String DEFAULT 'a, (b'' ]', bucket UInt16 ALIAS toUInt16(cityHash64(user_id) % 65536)) ENGINE = Distributed(`lift`, `db`, `nodes_local`, cityHash64(user_id))",
			},
		},
		{
			name: "drop view",
			in:   "DROP TABLE IF EXISTS counts_mv",
			want: []string{"DROP TABLE IF EXISTS `db`.`counts_mv` ON CLUSTER `lift`"},
		},
		{
			name: "drop table",
			in:   "DROP TABLE nodes_old",
			want: []string{
				"DROP TABLE `db`.`nodes_old` ON CLUSTER `lift`",
				"DROP TABLE `db`.`nodes_old_local` ON CLUSTER `lift`",
			},
		},
		{
			name: "insert goes through the distributed tables",
			in:   "INSERT INTO nodes (user_id) SELECT user_id FROM nodes",
			want: []string{"INSERT INTO nodes (user_id) SELECT user_id FROM nodes"},
		},
	}
	for _, st := range steps {
		got, err := s.rewrite(st.in)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for i := range got {
			got[i] = strings.Join(strings.Fields(got[i]), " ")
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", st.name, diff)
		}
	}
	if _, ok := s.tables["nodes_old"]; ok {
		t.Error("nodes_old still known after DROP TABLE")
	}
}

func TestClusterRewriteRejects(t *testing.T) {
	for _, stmt := range []string{
		"CREATE TABLE t (a String) ENGINE = Memory",
		"CREATE TABLE t (a String) ENGINE = Log",
		"ALTER TABLE unknown ADD COLUMN a String",
		"ALTER TABLE t DROP PARTITION 202601",
		"RENAME TABLE unknown TO x",
		"CREATE VIEW v AS SELECT 1",
		"OPTIMIZE TABLE t FINAL",
	} {
		s := newClusterSchema("lift", "db")
		if _, err := s.rewrite("CREATE TABLE t (a String, user_id String) ENGINE = MergeTree ORDER BY a"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.rewrite(stmt); err == nil {
			t.Errorf("%s: rewritten to %q, want an error", stmt, got)
		}
	}
}

// TestClusterRewriteFile checks the file layout goose reads: sections kept, comments
// dropped (also after a semicolon), one statement per line; and that a Down section
// does not change what the next file sees.
func TestClusterRewriteFile(t *testing.T) {
	s := newClusterSchema("c", "d")
	got, err := s.rewriteFile("1.sql", `-- a comment; with a semicolon
-- +goose Up
CREATE TABLE IF NOT EXISTS t (
    user_id String -- the user; hashed
) ENGINE = MergeTree ORDER BY user_id; -- trailing

-- +goose Down
DROP TABLE IF EXISTS t;
`)
	if err != nil {
		t.Fatal(err)
	}
	want := "-- +goose Up\n" +
		"CREATE TABLE IF NOT EXISTS `d`.`t_local` ON CLUSTER `c` ( user_id String ) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/d/t_local', '{replica}') ORDER BY user_id;\n" +
		"CREATE TABLE IF NOT EXISTS `d`.`t` ON CLUSTER `c` (user_id String) ENGINE = Distributed(`c`, `d`, `t_local`, cityHash64(user_id));\n" +
		"-- +goose Down\n" +
		"DROP TABLE IF EXISTS `d`.`t` ON CLUSTER `c`;\n" +
		"DROP TABLE IF EXISTS `d`.`t_local` ON CLUSTER `c`;\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, ok := s.tables["t"]; !ok {
		t.Error("the Down section's DROP removed t for the next file")
	}
	if _, err := s.rewriteFile("2.sql", "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n"); err == nil {
		t.Error("StatementBegin: want an error")
	}
}

// TestClusterRewriteMigrations rewrites lift's own migrations: every statement must be
// one the rewrite knows, every table must end up replicated under a Distributed table,
// and the single-server files must be left as they are.
func TestClusterRewriteMigrations(t *testing.T) {
	fsys, err := FS("clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	cfs, err := clusterFS(fsys, "lift", "lift")
	if err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(cfs, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := fs.Glob(fsys, "*.sql")
	if len(names) != len(orig) || len(names) == 0 {
		t.Fatalf("%d rewritten files, want %d", len(names), len(orig))
	}
	for _, n := range names {
		b, err := fs.ReadFile(cfs, n)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
			if strings.HasPrefix(line, "-- +goose ") || strings.HasPrefix(line, "INSERT INTO ") {
				continue
			}
			if strings.HasPrefix(line, PerShard) {
				if !strings.HasPrefix(line, PerShard+"ALTER TABLE `lift`.`") || strings.Contains(line, "ON CLUSTER") {
					t.Errorf("%s: per-shard statement: %.120s", n, line)
				}
				continue
			}
			if !strings.Contains(line, " ON CLUSTER `lift`") || !strings.HasSuffix(line, ";") {
				t.Errorf("%s: statement not on the cluster: %.120s", n, line)
			}
			if strings.Contains(line, "ENGINE = ") && !strings.Contains(line, "ENGINE = Replicated") && !strings.Contains(line, "ENGINE = Distributed(") {
				t.Errorf("%s: table neither replicated nor distributed: %.120s", n, line)
			}
		}
	}
	s := newClusterSchema("lift", "lift")
	for _, n := range orig {
		b, _ := fs.ReadFile(fsys, n)
		if _, err := s.rewriteFile(n, string(b)); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range []string{"events", "exposures", "first_exposures", "daily_exposures", "daily_events",
		"segment_changes", "dead_letters", "bucket_rows", "metric_nodes", "feature_values"} {
		if _, ok := s.tables[table]; !ok {
			t.Errorf("table %s not known after the last migration", table)
		}
	}
	for _, gone := range []string{"events_v1", "events_v4", "exposures_v1", "exposures_v4"} {
		if _, ok := s.tables[gone]; ok {
			t.Errorf("table %s still known after the last migration", gone)
		}
	}
	if i := s.tables["events"].column("bucket"); i < 0 || !strings.Contains(s.tables["events"].columns[i].def, "MATERIALIZED") {
		t.Errorf("events.bucket: %+v", s.tables["events"].columns)
	}
}
