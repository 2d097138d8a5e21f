// Package chstore is the ClickHouse side of erasure, export and retention: it finds
// every table that stores rows with a user_id column (system.columns, so tables added
// later are covered without changing this code), deletes a user's rows with ALTER
// TABLE … DELETE and follows the mutations in system.mutations (ClickHouse 18.16 has
// no mutations_sync), and drops whole partitions past their retention.
//
// No query carries a user id in its text: ClickHouse keeps mutation commands in
// system.mutations and, on current versions, every query in system.query_log. Rows
// are matched on SHA256(user_id) instead.
//
// On a cluster (lift migrated with LIFT_CLICKHOUSE_CLUSTER, found from the engine of
// events: chconn.OpenLayout) the tables keep the names analysts use, which are
// Distributed tables, and the rows are in the replicated tables <name>_local of every
// shard; system tables describe only the node they are read on. So the store:
//
//   - lists and reports tables under the analysts' names (events, not events_local);
//   - starts mutations and drops partitions on the local tables, on one replica of
//     every shard, not ON CLUSTER (see StartDelete): the replicas of a shard share
//     them through ZooKeeper;
//   - counts an erased user's rows and follows mutations on every replica of every
//     shard, each through a connection to that replica alone, so that an erasure is
//     complete only when no replica holds the rows; a replica that cannot be read is
//     an error, never "done";
//   - reads partitions on every shard (one replica each) and exports through the
//     Distributed tables, which read every shard.
//
// docs/deploy.md ("What runs where") says what complete means for an operator.
package chstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/internal/chconn"
)

// Store implements gdpr.Events and the ClickHouse part of retention. It is safe for
// concurrent use.
type Store struct {
	conn     driver.Conn
	database string

	layoutMu sync.Mutex
	l        *layout // found at the first call that needs it
}

// Open connects lazily to the database at addr (host:port, or every node of a
// cluster, comma-separated; native protocol).
func Open(addr, database string) (*Store, error) {
	conn, err := chconn.Open(addr, database, readTimeout)
	if err != nil {
		return nil, fmt.Errorf("gdpr/chstore: %w", err)
	}
	return &Store{conn: conn, database: database}, nil
}

// Close closes the connections.
func (s *Store) Close() error {
	s.layoutMu.Lock()
	defer s.layoutMu.Unlock()
	if s.l != nil {
		s.l.close()
	}
	return s.conn.Close()
}

// table is a table that stores rows.
type table struct {
	name   string // as analysts and retention policies name it
	engine string // of the table that holds its rows (on a cluster name_local)
}

// userTables lists the tables of the database with a user_id column, except views
// (a materialized view's rows live in its TO table or its .inner. table, both listed).
// On a cluster they are the Distributed tables over replicated <name>_local tables,
// as lift's migrations make them.
func (s *Store) userTables(ctx context.Context) ([]table, error) {
	l, err := s.layout(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(ctx, `SELECT c.table, t.engine FROM system.columns AS c
		ANY INNER JOIN (SELECT name AS table, engine FROM system.tables WHERE database = currentDatabase()) AS t USING table
		WHERE c.database = currentDatabase() AND c.name = 'user_id' AND (t.engine LIKE '%MergeTree%' OR t.engine = 'Distributed')
		ORDER BY c.table`)
	if err != nil {
		return nil, fmt.Errorf("gdpr/chstore: list tables: %w", err)
	}
	defer rows.Close()
	var names []string
	engines := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			return nil, fmt.Errorf("gdpr/chstore: list tables: %w", err)
		}
		names, engines[name] = append(names, name), engine
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gdpr/chstore: list tables: %w", err)
	}
	var out []table
	for _, local := range names {
		name, ok := l.analyst(local)
		if !ok || !strings.Contains(engines[local], "MergeTree") || l.cluster != "" && engines[name] != "Distributed" {
			continue
		}
		out = append(out, table{name: name, engine: engines[local]})
	}
	slices.SortFunc(out, func(a, b table) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// Tables lists the tables that have a user_id column and store rows, under the
// names analysts use (on a cluster the Distributed tables, not their _local tables).
func (s *Store) Tables(ctx context.Context) ([]string, error) {
	ts, err := s.userTables(ctx)
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.name
	}
	return names, err
}

func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "\\`") + "`" }

// matchUsers is the condition selecting the users' rows by digest.
func matchUsers(userIDs []string) string {
	digests := make([]string, len(userIDs))
	for i, id := range userIDs {
		sum := sha256.Sum256([]byte(id))
		digests[i] = "unhex('" + hex.EncodeToString(sum[:]) + "')"
	}
	return "SHA256(user_id) IN (" + strings.Join(digests, ", ") + ")"
}

var markerPattern = regexp.MustCompile(`^[A-Za-z0-9:_-]+$`)

// StartDelete starts the mutation deleting the users' rows from table, with marker
// in its command: on a cluster on table's local table, on one replica of every
// shard (the other replicas take it from ZooKeeper). A shard whose replica already
// lists a mutation with marker is left alone, so calling it again after a partial
// start (a restart between two shards) starts only what is missing.
//
// It is not ALTER … ON CLUSTER: ClickHouse 18.16 runs that once per shard too, but
// two replicas of a shard can both take the task, and the loser's DDL queue stops
// (migrations.PerShard).
func (s *Store) StartDelete(ctx context.Context, table string, userIDs []string, marker string) error {
	if !markerPattern.MatchString(marker) || len(userIDs) == 0 {
		return fmt.Errorf("gdpr/chstore: bad erasure of %s (marker %q, %d ids)", table, marker, len(userIDs))
	}
	l, err := s.layout(ctx)
	if err != nil {
		return err
	}
	local := l.local(table)
	q := fmt.Sprintf("ALTER TABLE %s DELETE WHERE %s AND '%s' != ''", quote(local), matchUsers(userIDs), marker)
	for _, sh := range l.shards {
		n, err := countListed(ctx, sh.conn, local, marker)
		if err != nil {
			return fmt.Errorf("gdpr/chstore: mutations of %s%s: %w", local, sh.on(), err)
		}
		if n > 0 {
			continue
		}
		if err := sh.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("gdpr/chstore: delete from %s%s: %w", local, sh.on(), err)
		}
		// A replica lists a mutation of a replicated table once it has read it back
		// from ZooKeeper, a moment after the ALTER returns: wait for that (briefly;
		// the mutation runs anyway), so that FindMutation finds what was started and
		// a second call does not start it again.
		for wait := 10 * time.Millisecond; n == 0 && err == nil && wait < 3*time.Second; wait *= 2 {
			time.Sleep(wait)
			n, err = countListed(ctx, sh.conn, local, marker)
		}
	}
	return nil
}

// countListed counts the mutations of table carrying marker in system.mutations of
// the server conn reaches.
func countListed(ctx context.Context, conn driver.Conn, table, marker string) (uint64, error) {
	var n uint64
	err := conn.QueryRow(ctx, `SELECT count() FROM system.mutations
		WHERE database = currentDatabase() AND table = ? AND position(command, ?) > 0`, table, "'"+marker+"'").Scan(&n)
	return n, err
}

// on names the shard in an error ("" on one server).
func (sh shard) on() string {
	if sh.num == 0 {
		return ""
	}
	return fmt.Sprintf(" on shard %d", sh.num)
}

// FindMutation returns the id of the newest mutation of table carrying marker and
// whether it is done ("" if there is none). On a cluster the id is each shard's
// mutation id ("1/0000000003,2/0000000001"), "" while a shard has none yet, and the
// mutation is done only when it is done on every replica of every shard. It returns
// an error, and so never done, if a replica cannot be read.
func (s *Store) FindMutation(ctx context.Context, table, marker string) (string, bool, error) {
	l, err := s.layout(ctx)
	if err != nil {
		return "", false, err
	}
	local := l.local(table)
	var ids []string
	done := true
	for _, sh := range l.shards {
		id := ""
		for _, r := range sh.replicas {
			rid, rdone, err := newestMutation(ctx, r.conn, local, marker)
			if err != nil {
				return "", false, fmt.Errorf("gdpr/chstore: mutations of %s on %s: %w", local, r, err)
			}
			if rid != "" {
				id = rid // the same on every replica of the shard: its node in ZooKeeper
			}
			done = done && rdone // not done where it is not listed yet
		}
		if id == "" {
			return "", false, nil
		}
		if l.cluster != "" {
			id = fmt.Sprintf("%d/%s", sh.num, id)
		}
		ids = append(ids, id)
	}
	return strings.Join(ids, ","), done, nil
}

// newestMutation reads the newest mutation of table carrying marker in
// system.mutations of the server conn reaches.
func newestMutation(ctx context.Context, conn driver.Conn, table, marker string) (string, bool, error) {
	rows, err := conn.Query(ctx, `SELECT mutation_id, is_done FROM system.mutations
		WHERE database = currentDatabase() AND table = ? AND position(command, ?) > 0
		ORDER BY create_time DESC LIMIT 1`, table, "'"+marker+"'")
	if err != nil {
		return "", false, err
	}
	defer rows.Close()
	var id string
	var done uint8
	if rows.Next() {
		if err := rows.Scan(&id, &done); err != nil {
			return "", false, err
		}
	}
	return id, done == 1, rows.Err()
}

// Count counts the users' rows in table. On a cluster it counts them on every
// replica of their shard and takes the most, so that a replica that has not yet
// applied the erasure (or fetched a part another one deleted from) counts; a replica
// that cannot be read is an error.
func (s *Store) Count(ctx context.Context, table string, userIDs []string) (uint64, error) {
	l, err := s.layout(ctx)
	if err != nil {
		return 0, err
	}
	local := l.local(table)
	q := fmt.Sprintf("SELECT count() FROM %s WHERE %s", quote(local), matchUsers(userIDs))
	var total uint64
	for _, sh := range l.shards {
		var most uint64
		for _, r := range sh.replicas {
			var n uint64
			if err := r.conn.QueryRow(ctx, q).Scan(&n); err != nil {
				return 0, fmt.Errorf("gdpr/chstore: count in %s on %s: %w", local, r, err)
			}
			most = max(most, n)
		}
		total += most
	}
	return total, nil
}

// LinkedIDs returns the anonymous ids the users' $identify events link to, each
// with the sources of those events (events.source).
func (s *Store) LinkedIDs(ctx context.Context, userIDs []string) ([]gdpr.Link, error) {
	// The top-level anonymous_id only (migration 00046): visitParamExtractString
	// would take an "anonymous_id" nested anywhere in the properties.
	rows, err := s.conn.Query(ctx, fmt.Sprintf(`SELECT if(prop_types[indexOf(prop_keys, 'anonymous_id')] = 'string',
		prop_strings[indexOf(prop_keys, 'anonymous_id')], '') AS id,
		arraySort(groupUniqArray(toString(source)))
		FROM events WHERE type = '$identify' AND %s GROUP BY id ORDER BY id`, matchUsers(userIDs)))
	if err != nil {
		return nil, fmt.Errorf("gdpr/chstore: linked ids: %w", err)
	}
	defer rows.Close()
	var links []gdpr.Link
	for rows.Next() {
		var l gdpr.Link
		if err := rows.Scan(&l.ID, &l.Sources); err != nil {
			return nil, fmt.Errorf("gdpr/chstore: linked ids: %w", err)
		}
		if l.ID != "" {
			links = append(links, l)
		}
	}
	return links, rows.Err()
}

// Export returns the users' rows of every table with a user_id column: every column,
// aggregate states finalised, properties as JSON. On a cluster it reads through the
// Distributed tables, so every shard; FINAL there is exact, since a user's rows all
// live on one shard.
func (s *Store) Export(ctx context.Context, userIDs []string) (map[string][]map[string]any, error) {
	tables, err := s.userTables(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]map[string]any, len(tables))
	for _, t := range tables {
		rows, err := s.exportTable(ctx, t, userIDs)
		if err != nil {
			return nil, err
		}
		out[t.name] = rows
	}
	return out, nil
}

func (s *Store) exportTable(ctx context.Context, t table, userIDs []string) ([]map[string]any, error) {
	cols, err := s.conn.Query(ctx, "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = ?", t.name) // in table order (18.16 has no position column)
	if err != nil {
		return nil, fmt.Errorf("gdpr/chstore: columns of %s: %w", t.name, err)
	}
	var exprs, names []string
	for cols.Next() {
		var name, typ string
		if err := cols.Scan(&name, &typ); err != nil {
			cols.Close()
			return nil, err
		}
		expr := quote(name)
		if strings.HasPrefix(typ, "AggregateFunction(") {
			expr = "finalizeAggregation(" + expr + ")"
		}
		exprs, names = append(exprs, expr+" AS "+quote(name)), append(names, name)
	}
	cols.Close()
	final := ""
	if strings.Contains(t.engine, "Replacing") || strings.Contains(t.engine, "Aggregating") {
		final = " FINAL" // one row per key, as analysts read them
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT %s FROM %s%s WHERE %s", strings.Join(exprs, ", "), quote(t.name), final, matchUsers(userIDs)))
	if err != nil {
		return nil, fmt.Errorf("gdpr/chstore: export %s: %w", t.name, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	out := []map[string]any{}
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("gdpr/chstore: export %s: %w", t.name, err)
		}
		row := make(map[string]any, len(dest))
		for i, d := range dest {
			v := reflect.ValueOf(d).Elem().Interface()
			if str, ok := v.(string); ok && names[i] == "properties" && json.Valid([]byte(str)) {
				v = json.RawMessage(str)
			}
			row[names[i]] = v
		}
		out = append(out, row)
	}
	return out, rows.Err()
}
