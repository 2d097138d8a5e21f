package migrations

// Cluster mode (WithCluster): the ClickHouse migrations are written once, for one
// server, and rewritten statement by statement for a cluster before goose sees them,
// so that single-server installations run exactly the files in clickhouse/ and a
// cluster runs their translation (docs/deploy.md, "Running on a ClickHouse cluster"):
//
//   - CREATE TABLE t (…) ENGINE = XMergeTree(args) … becomes the replicated local table
//     t_local, created ON CLUSTER with ReplicatedXMergeTree('/clickhouse/tables/{shard}/
//     <db>/t_local', '{replica}', args), and the Distributed table t over it, under the
//     name readers and writers use. t is sharded by cityHash64(user_id) when it has a
//     user_id column (each user's rows live on one shard, so per-user aggregates and
//     ReplacingMergeTree's FINAL stay exact per shard) and otherwise by cityHash64 of
//     its ORDER BY key (rows that replace each other meet on one shard).
//     A MATERIALIZED column of t_local is an ALIAS of the same expression in t: 18.16
//     refuses inserts through a Distributed table that has MATERIALIZED columns.
//   - CREATE MATERIALIZED VIEW v TO t AS SELECT … FROM s … is created ON CLUSTER from
//     s_local into t_local: every replica aggregates the rows it receives.
//   - ALTER TABLE t ADD/DROP/MODIFY COLUMN alters t_local on one replica of every
//     shard (PerShard; the other replicas follow through ZooKeeper) and creates t
//     again with the new columns (ClickHouse refuses ALTER … ON CLUSTER of a
//     Distributed table on a cluster with internal_replication); ALTER TABLE t
//     UPDATE/DELETE, a mutation, runs on t_local per shard likewise.
//   - DROP TABLE drops t and t_local (or the view v) ON CLUSTER; RENAME TABLE renames
//     the local tables ON CLUSTER and recreates the Distributed tables under the new
//     names; TRUNCATE TABLE truncates t_local ON CLUSTER.
//   - INSERT … SELECT is left alone: it reads and writes the Distributed tables, with
//     insert_distributed_sync so that it has finished when the statement returns.
//
// Anything else fails the rewrite, so a new kind of statement is noticed by the tests
// (cluster_internal_test.go) before it reaches a cluster. Names in the rewritten
// statements are qualified with the database, because ON CLUSTER queries run on every
// node without the migrator's current database. Views are recognised by the suffix
// _mv, which every materialized view of lift has.

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing/fstest"

	"github.com/pressly/goose/v3"
)

// localSuffix names the replicated table under a Distributed table.
const localSuffix = "_local"

// PerShard starts a rewritten statement that runs on one replica of every shard, not
// ON CLUSTER: an ALTER of a replicated table, which its replicas share through
// ZooKeeper. (ClickHouse 18.16 runs such an ALTER … ON CLUSTER once per shard too,
// but two replicas of a shard can both take the task, and the loser's DDL queue then
// stops: seen on the local test cluster under concurrent migrations.)
const PerShard = "/* per shard */ "

type chColumn struct {
	name string
	def  string // everything after the name: type, DEFAULT/MATERIALIZED expression
}

type chTable struct {
	columns []chColumn
	orderBy string // the ORDER BY key without parentheses
}

// clusterSchema rewrites statements in migration order and follows the tables they
// create, since a Distributed table repeats its local table's columns.
type clusterSchema struct {
	cluster, db string
	tables      map[string]*chTable
}

func newClusterSchema(cluster, db string) *clusterSchema {
	return &clusterSchema{cluster: cluster, db: db, tables: map[string]*chTable{}}
}

func (s *clusterSchema) q(name string) string { return "`" + s.db + "`.`" + name + "`" }

func (s *clusterSchema) onCluster() string { return " ON CLUSTER `" + s.cluster + "`" }

var (
	reCreateTable = regexp.MustCompile(`(?is)^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\(`)
	reEngine      = regexp.MustCompile(`(?is)^\s*ENGINE\s*=\s*(\w*MergeTree)\b\s*`)
	reOrderBy     = regexp.MustCompile(`(?is)\bORDER\s+BY\s+(\([^)]*\)|\w+)`)
	reCreateView  = regexp.MustCompile(`(?is)^CREATE\s+MATERIALIZED\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s+TO\s+(\w+)\s+AS\s+(.*)$`)
	reFrom        = regexp.MustCompile(`(?i)\bFROM\s+(\w+)\b`)
	reDrop        = regexp.MustCompile(`(?is)^DROP\s+TABLE\s+(IF\s+EXISTS\s+)?(\w+)$`)
	reTruncate    = regexp.MustCompile(`(?is)^TRUNCATE\s+TABLE\s+(IF\s+EXISTS\s+)?(\w+)$`)
	reRename      = regexp.MustCompile(`(?is)^RENAME\s+TABLE\s+(.*)$`)
	reRenamePair  = regexp.MustCompile(`(?is)^(\w+)\s+TO\s+(\w+)$`)
	reAlter       = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+(\w+)\s+(.*)$`)
	reMutation    = regexp.MustCompile(`(?is)^(UPDATE|DELETE)\b`)
	reAddColumn   = regexp.MustCompile(`(?is)^ADD\s+COLUMN\s+(\w+)\s+(.*?)(?:\s+AFTER\s+(\w+))?$`)
	reDropColumn  = regexp.MustCompile(`(?is)^DROP\s+COLUMN\s+(\w+)$`)
	reModColumn   = regexp.MustCompile(`(?is)^MODIFY\s+COLUMN\s+(\w+)\s+(.*)$`)
	reInsert      = regexp.MustCompile(`(?is)^INSERT\s+INTO\s+`)
	reIdent       = regexp.MustCompile(`^\w+$`)
)

func isView(name string) bool { return strings.HasSuffix(name, "_mv") }

// rewrite returns the cluster statements for one single-server statement (without
// its semicolon and comments).
func (s *clusterSchema) rewrite(stmt string) ([]string, error) {
	stmt = strings.TrimSpace(stmt)
	switch {
	case reCreateTable.MatchString(stmt):
		return s.createTable(stmt)
	case reCreateView.MatchString(stmt):
		m := reCreateView.FindStringSubmatch(stmt)
		sel := reFrom.ReplaceAllStringFunc(m[4], func(from string) string {
			name := reFrom.FindStringSubmatch(from)[1]
			if _, ok := s.tables[name]; !ok {
				return from
			}
			return "FROM " + s.q(name+localSuffix)
		})
		return []string{"CREATE MATERIALIZED VIEW " + m[1] + s.q(m[2]) + s.onCluster() +
			" TO " + s.q(m[3]+localSuffix) + " AS " + sel}, nil
	case reDrop.MatchString(stmt):
		m := reDrop.FindStringSubmatch(stmt)
		if isView(m[2]) {
			return []string{"DROP TABLE " + m[1] + s.q(m[2]) + s.onCluster()}, nil
		}
		delete(s.tables, m[2])
		return []string{
			"DROP TABLE " + m[1] + s.q(m[2]) + s.onCluster(),
			"DROP TABLE " + m[1] + s.q(m[2]+localSuffix) + s.onCluster(),
		}, nil
	case reTruncate.MatchString(stmt):
		m := reTruncate.FindStringSubmatch(stmt)
		return []string{"TRUNCATE TABLE " + m[1] + s.q(m[2]+localSuffix) + s.onCluster()}, nil
	case reRename.MatchString(stmt):
		return s.rename(reRename.FindStringSubmatch(stmt)[1])
	case reAlter.MatchString(stmt):
		m := reAlter.FindStringSubmatch(stmt)
		return s.alter(m[1], m[2])
	case reInsert.MatchString(stmt):
		return []string{stmt}, nil
	}
	return nil, fmt.Errorf("cluster mode cannot rewrite %.60q", stmt)
}

func (s *clusterSchema) createTable(stmt string) ([]string, error) {
	m := reCreateTable.FindStringSubmatchIndex(stmt)
	ifNotExists, name := "", stmt[m[4]:m[5]]
	if m[2] >= 0 {
		ifNotExists = stmt[m[2]:m[3]]
	}
	open := m[1] - 1
	end := matchParen(stmt, open)
	if end < 0 {
		return nil, fmt.Errorf("cluster mode: CREATE TABLE %s: unbalanced parentheses", name)
	}
	body, rest := stmt[open+1:end], stmt[end+1:]
	em := reEngine.FindStringSubmatchIndex(rest)
	if em == nil {
		return nil, fmt.Errorf("cluster mode: CREATE TABLE %s: want an ENGINE of the MergeTree family", name)
	}
	engine, afterEngine := rest[em[2]:em[3]], rest[em[1]:]
	args := ""
	if strings.HasPrefix(afterEngine, "(") {
		close := matchParen(afterEngine, 0)
		if close < 0 {
			return nil, fmt.Errorf("cluster mode: CREATE TABLE %s: unbalanced engine arguments", name)
		}
		args = strings.TrimSpace(afterEngine[1:close])
		afterEngine = afterEngine[close+1:]
	}
	t := &chTable{}
	for _, c := range splitTopLevel(body, ',') {
		c = strings.TrimSpace(c)
		f := strings.Fields(c)
		if len(f) < 2 || !reIdent.MatchString(f[0]) {
			return nil, fmt.Errorf("cluster mode: CREATE TABLE %s: cannot read column %.40q", name, c)
		}
		t.columns = append(t.columns, chColumn{name: f[0], def: strings.TrimSpace(c[len(f[0]):])})
	}
	if om := reOrderBy.FindStringSubmatch(afterEngine); om != nil {
		t.orderBy = strings.Trim(om[1], "()")
	}
	s.tables[name] = t

	local := name + localSuffix
	zkArgs := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s', '{replica}'", s.db, local)
	if args != "" {
		zkArgs += ", " + args
	}
	return []string{
		"CREATE TABLE " + ifNotExists + s.q(local) + s.onCluster() + " (" + body + ") ENGINE = Replicated" +
			engine + "(" + zkArgs + ") " + strings.TrimSpace(afterEngine),
		s.createDistributed(ifNotExists, name),
	}, nil
}

// createDistributed is the Distributed table name over name_local.
func (s *clusterSchema) createDistributed(ifNotExists, name string) string {
	t := s.tables[name]
	cols := make([]string, len(t.columns))
	key := "cityHash64(" + t.orderBy + ")"
	for i, c := range t.columns {
		cols[i] = c.name + " " + replaceTopLevelWord(c.def, "MATERIALIZED", "ALIAS")
		if c.name == "user_id" {
			key = "cityHash64(user_id)"
		}
	}
	return "CREATE TABLE " + ifNotExists + s.q(name) + s.onCluster() + " (" + strings.Join(cols, ", ") +
		") ENGINE = Distributed(`" + s.cluster + "`, `" + s.db + "`, `" + name + localSuffix + "`, " + key + ")"
}

func (s *clusterSchema) rename(list string) ([]string, error) {
	var drops, renames, creates []string
	moved := map[string]*chTable{}
	var targets []string
	for _, pair := range splitTopLevel(list, ',') {
		m := reRenamePair.FindStringSubmatch(strings.TrimSpace(pair))
		if m == nil {
			return nil, fmt.Errorf("cluster mode: cannot read RENAME %.40q", pair)
		}
		from, to := m[1], m[2]
		t, ok := s.tables[from]
		if !ok {
			return nil, fmt.Errorf("cluster mode: RENAME of unknown table %s", from)
		}
		moved[to] = t
		targets = append(targets, to)
		drops = append(drops, "DROP TABLE IF EXISTS "+s.q(from)+s.onCluster())
		renames = append(renames, s.q(from+localSuffix)+" TO "+s.q(to+localSuffix))
	}
	for _, pair := range splitTopLevel(list, ',') {
		delete(s.tables, reRenamePair.FindStringSubmatch(strings.TrimSpace(pair))[1])
	}
	for _, to := range targets {
		s.tables[to] = moved[to]
		creates = append(creates, s.createDistributed("", to))
	}
	out := append(drops, "RENAME TABLE "+strings.Join(renames, ", ")+s.onCluster())
	return append(out, creates...), nil
}

func (s *clusterSchema) alter(name, clauses string) ([]string, error) {
	local := PerShard + "ALTER TABLE " + s.q(name+localSuffix) + " " + clauses
	if reMutation.MatchString(clauses) {
		return []string{local}, nil
	}
	t, ok := s.tables[name]
	if !ok {
		return nil, fmt.Errorf("cluster mode: ALTER of unknown table %s", name)
	}
	for _, c := range splitTopLevel(clauses, ',') {
		c = strings.TrimSpace(c)
		switch {
		case reAddColumn.MatchString(c):
			m := reAddColumn.FindStringSubmatch(c)
			col := chColumn{name: m[1], def: m[2]}
			at := len(t.columns)
			if m[3] != "" {
				at = t.column(m[3]) + 1
				if at == 0 {
					return nil, fmt.Errorf("cluster mode: ALTER TABLE %s: no column %s", name, m[3])
				}
			}
			t.columns = append(t.columns[:at], append([]chColumn{col}, t.columns[at:]...)...)
		case reDropColumn.MatchString(c):
			i := t.column(reDropColumn.FindStringSubmatch(c)[1])
			if i < 0 {
				return nil, fmt.Errorf("cluster mode: ALTER TABLE %s: cannot drop unknown column in %.40q", name, c)
			}
			t.columns = append(t.columns[:i], t.columns[i+1:]...)
		case reModColumn.MatchString(c):
			m := reModColumn.FindStringSubmatch(c)
			i := t.column(m[1])
			if i < 0 {
				return nil, fmt.Errorf("cluster mode: ALTER TABLE %s: cannot modify unknown column %s", name, m[1])
			}
			t.columns[i].def = m[2]
		default:
			return nil, fmt.Errorf("cluster mode cannot rewrite ALTER TABLE %s %.40q", name, c)
		}
	}
	return []string{
		local,
		"DROP TABLE IF EXISTS " + s.q(name) + s.onCluster(),
		s.createDistributed("", name),
	}, nil
}

func (t *chTable) column(name string) int {
	for i, c := range t.columns {
		if c.name == name {
			return i
		}
	}
	return -1
}

// scan calls visit for every byte of s outside quotes, with the parenthesis depth
// there; it stops when visit returns false. Quotes are '…', "…" and `…` with
// backslash escapes, as ClickHouse reads them.
func scan(s string, visit func(i, depth int) bool) {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if quote != 0 {
			switch c {
			case '\\':
				i++
			case quote:
				quote = 0
			}
			continue
		}
		switch c {
		case '\'', '"', '`':
			quote = c
			continue
		case '(', '[':
			depth++
		case ')', ']':
			depth--
		}
		if !visit(i, depth) {
			return
		}
	}
}

// matchParen returns the index of the parenthesis closing the one at s[open], or -1.
func matchParen(s string, open int) int {
	end := -1
	scan(s[open:], func(i, depth int) bool {
		if depth == 0 {
			end = open + i
			return false
		}
		return true
	})
	return end
}

// splitTopLevel splits s at the separators outside quotes and parentheses.
func splitTopLevel(s string, sep byte) []string {
	var parts []string
	start := 0
	scan(s, func(i, depth int) bool {
		if depth == 0 && s[i] == sep {
			parts = append(parts, s[start:i])
			start = i + 1
		}
		return true
	})
	return append(parts, s[start:])
}

// replaceTopLevelWord replaces the first whole word old outside quotes and
// parentheses.
func replaceTopLevelWord(s, old, new string) string {
	at := -1
	scan(s, func(i, depth int) bool {
		if depth == 0 && strings.HasPrefix(strings.ToUpper(s[i:]), old) &&
			(i == 0 || !isWordByte(s[i-1])) && (i+len(old) == len(s) || !isWordByte(s[i+len(old)])) {
			at = i
			return false
		}
		return true
	})
	if at < 0 {
		return s
	}
	return s[:at] + new + s[at+len(old):]
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// stripComment removes a -- comment from one line, outside quotes.
func stripComment(line string) string {
	cut := len(line)
	scan(line, func(i, _ int) bool {
		if strings.HasPrefix(line[i:], "--") {
			cut = i
			return false
		}
		return true
	})
	return line[:cut]
}

// clone returns a deep copy of s.tables.
func (s *clusterSchema) clone() map[string]*chTable {
	c := make(map[string]*chTable, len(s.tables))
	for name, t := range s.tables {
		c[name] = &chTable{columns: append([]chColumn(nil), t.columns...), orderBy: t.orderBy}
	}
	return c
}

// rewriteFile returns the cluster translation of one goose SQL file: its Up and Down
// sections rewritten statement by statement, one statement per line. A statement
// ends at a line ending in a semicolon, as goose splits them. The Down section is
// rewritten against the tables as Up leaves them, and the next file sees them so too.
func (s *clusterSchema) rewriteFile(name, src string) (string, error) {
	var afterUp map[string]*chTable
	defer func() {
		if afterUp != nil {
			s.tables = afterUp
		}
	}()
	var out strings.Builder
	var stmt strings.Builder
	sc := bufio.NewScanner(strings.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	section := ""
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "-- +goose") {
			switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(trimmed, "-- +goose"))) {
			case "up", "down":
				if strings.EqualFold(trimmed, "-- +goose down") && afterUp == nil {
					afterUp = s.clone()
				}
				section = trimmed
				out.WriteString(trimmed + "\n")
				continue
			}
			return "", fmt.Errorf("%s: cluster mode does not support %q", name, trimmed)
		}
		code := strings.TrimRight(stripComment(line), " \t")
		if strings.TrimSpace(code) == "" {
			continue
		}
		if section == "" {
			return "", fmt.Errorf("%s: statement before -- +goose Up", name)
		}
		stmt.WriteString(code + "\n")
		if !strings.HasSuffix(code, ";") {
			continue
		}
		text := strings.TrimSuffix(strings.TrimSpace(stmt.String()), ";")
		stmt.Reset()
		stmts, err := s.rewrite(text)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		for _, st := range stmts {
			out.WriteString(strings.Join(strings.Fields(st), " ") + ";\n")
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if strings.TrimSpace(stmt.String()) != "" {
		return "", fmt.Errorf("%s: statement without a final semicolon", name)
	}
	return out.String(), nil
}

// clusterFS returns the migrations of fsys rewritten for cluster on database db.
// Files are rewritten in version order: a statement may depend on tables earlier
// files created.
func clusterFS(fsys fs.FS, cluster, db string) (fs.FS, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names) // goose's versions are zero-padded, so names sort by version
	s := newClusterSchema(cluster, db)
	out := fstest.MapFS{}
	for _, n := range names {
		src, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		text, err := s.rewriteFile(path.Base(n), string(src))
		if err != nil {
			return nil, err
		}
		out[n] = &fstest.MapFile{Data: []byte(text), Mode: 0o444}
	}
	return out, nil
}

// clusterMigrations turns the rewritten files of fsys into goose Go migrations, one
// per file with its version, that run each statement on the migrator's connection,
// or, when it starts with PerShard, on each of shards (one pool per shard).
func clusterMigrations(fsys fs.FS, shards []*sql.DB) ([]*goose.Migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []*goose.Migration
	for _, n := range names {
		version, err := goose.NumericComponent(n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		src, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		var up, down []string
		section := &up
		for line := range strings.SplitSeq(string(src), "\n") {
			switch {
			case strings.EqualFold(line, "-- +goose up"):
				section = &up
			case strings.EqualFold(line, "-- +goose down"):
				section = &down
			case strings.TrimSpace(line) != "":
				*section = append(*section, strings.TrimSuffix(line, ";"))
			}
		}
		run := func(stmts []string) *goose.GoFunc {
			return &goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error {
				for _, st := range stmts {
					targets := []*sql.DB{db}
					if strings.HasPrefix(st, PerShard) {
						targets = shards
					}
					for _, t := range targets {
						if _, err := t.ExecContext(ctx, st); err != nil {
							return fmt.Errorf("%s: %.80s: %w", n, st, err)
						}
					}
				}
				return nil
			}}
		}
		out = append(out, goose.NewGoMigration(version, run(up), run(down)))
	}
	return out, nil
}

// openShards returns a pool per shard of cluster, over its replicas, as
// system.clusters of the node db is connected to lists them.
func openShards(ctx context.Context, db *sql.DB, cluster string) ([]*sql.DB, error) {
	rows, err := db.QueryContext(ctx, `SELECT shard_num, host_address, port FROM system.clusters
		WHERE cluster = ? ORDER BY shard_num, replica_num`, cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	defer rows.Close()
	var addrs [][]string
	last := uint32(0)
	for rows.Next() {
		var num uint32
		var host string
		var port uint16
		if err := rows.Scan(&num, &host, &port); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cluster, err)
		}
		if len(addrs) == 0 || num != last {
			addrs = append(addrs, nil)
			last = num
		}
		addrs[len(addrs)-1] = append(addrs[len(addrs)-1], net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("cluster %s is not in system.clusters", cluster)
	}
	var shards []*sql.DB
	for _, a := range addrs {
		shards = append(shards, OpenClickHouse(strings.Join(a, ","), "default"))
	}
	return shards, nil
}
