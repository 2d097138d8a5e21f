// Package chstore is the ClickHouse side of erasure, export and retention: it finds
// every table that stores rows with a user_id column (system.columns, so tables added
// later are covered without changing this code), deletes a user's rows with ALTER
// TABLE … DELETE and follows the mutations in system.mutations (ClickHouse 18.16 has
// no mutations_sync), and drops whole partitions past their retention.
//
// No query carries a user id in its text: ClickHouse keeps mutation commands in
// system.mutations and, on current versions, every query in system.query_log. Rows
// are matched on SHA256(user_id) instead.
package chstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/internal/chconn"
	"github.com/liftlab/lift/migrations"
)

// Store implements gdpr.Events and the ClickHouse part of retention.
type Store struct {
	conn driver.Conn
}

// Open connects lazily to the database at addr (host:port, native protocol).
func Open(addr, database string) (*Store, error) {
	conn, err := chconn.Open(addr, database, 5*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("gdpr/chstore: %w", err)
	}
	return &Store{conn: conn}, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.conn.Close() }

// table is a table that stores rows.
type table struct {
	name, engine string
}

// userTables lists the tables of the database with a user_id column, except views
// (a materialized view's rows live in its TO table or its .inner. table, both listed).
func (s *Store) userTables(ctx context.Context) ([]table, error) {
	rows, err := s.conn.Query(ctx, `SELECT c.table, t.engine FROM system.columns AS c
		ANY INNER JOIN (SELECT name AS table, engine FROM system.tables WHERE database = currentDatabase()) AS t USING table
		WHERE c.database = currentDatabase() AND c.name = 'user_id' AND t.engine LIKE '%MergeTree%'
		ORDER BY c.table`)
	if err != nil {
		return nil, fmt.Errorf("gdpr/chstore: list tables: %w", err)
	}
	defer rows.Close()
	var out []table
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.name, &t.engine); err != nil {
			return nil, fmt.Errorf("gdpr/chstore: list tables: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Tables lists the tables that have a user_id column and store rows.
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
// in its command.
func (s *Store) StartDelete(ctx context.Context, table string, userIDs []string, marker string) error {
	if !markerPattern.MatchString(marker) || len(userIDs) == 0 {
		return fmt.Errorf("gdpr/chstore: bad erasure of %s (marker %q, %d ids)", table, marker, len(userIDs))
	}
	q := fmt.Sprintf("ALTER TABLE %s DELETE WHERE %s AND '%s' != ''", quote(table), matchUsers(userIDs), marker)
	if err := s.conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("gdpr/chstore: delete from %s: %w", table, err)
	}
	return nil
}

// FindMutation returns the id of the newest mutation of table carrying marker and
// whether it is done ("" if there is none).
func (s *Store) FindMutation(ctx context.Context, table, marker string) (string, bool, error) {
	rows, err := s.conn.Query(ctx, `SELECT mutation_id, is_done FROM system.mutations
		WHERE database = currentDatabase() AND table = ? AND position(command, ?) > 0
		ORDER BY create_time DESC LIMIT 1`, table, "'"+marker+"'")
	if err != nil {
		return "", false, fmt.Errorf("gdpr/chstore: mutations of %s: %w", table, err)
	}
	defer rows.Close()
	var id string
	var done uint8
	if rows.Next() {
		if err := rows.Scan(&id, &done); err != nil {
			return "", false, fmt.Errorf("gdpr/chstore: mutations of %s: %w", table, err)
		}
	}
	return id, done == 1, rows.Err()
}

// Count counts the users' rows in table.
func (s *Store) Count(ctx context.Context, table string, userIDs []string) (uint64, error) {
	var n uint64
	err := s.conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s WHERE %s", quote(table), matchUsers(userIDs))).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("gdpr/chstore: count in %s: %w", table, err)
	}
	return n, nil
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
// aggregate states finalised, properties as JSON.
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

// Partitions lists the active partitions of every table of the database (lift's
// migration bookkeeping excepted), with the time of their newest row: the greatest
// max_time or max_date of their parts, which ClickHouse keeps from the partition
// key's DateTime or Date columns (zero when the key has none). Partitions without
// rows are left out.
func (s *Store) Partitions(ctx context.Context) ([]gdpr.Partition, error) {
	rows, err := s.conn.Query(ctx, `SELECT table, partition_id, sum(rows), max(max_time), max(max_date)
		FROM system.parts WHERE database = currentDatabase() AND active AND table != ?
		GROUP BY table, partition_id HAVING sum(rows) > 0 ORDER BY table, partition_id`, migrations.VersionTable)
	if err != nil {
		return nil, fmt.Errorf("gdpr/chstore: partitions: %w", err)
	}
	defer rows.Close()
	var out []gdpr.Partition
	for rows.Next() {
		var p gdpr.Partition
		var maxTime, maxDate time.Time
		if err := rows.Scan(&p.Table, &p.ID, &p.Rows, &maxTime, &maxDate); err != nil {
			return nil, fmt.Errorf("gdpr/chstore: partitions: %w", err)
		}
		if maxTime.Year() > 1970 {
			p.Newest = maxTime.UTC()
		}
		// A Date covers its whole day.
		if end := maxDate.UTC().AddDate(0, 0, 1).Add(-time.Second); maxDate.Year() > 1970 && end.After(p.Newest) {
			p.Newest = end
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

var partitionID = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// DropPartition drops one partition by its id.
func (s *Store) DropPartition(ctx context.Context, table, id string) error {
	if !partitionID.MatchString(id) {
		return fmt.Errorf("gdpr/chstore: unexpected partition id %q", id)
	}
	if err := s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION ID '%s'", quote(table), id)); err != nil {
		return fmt.Errorf("gdpr/chstore: drop partition %s of %s: %w", id, table, err)
	}
	return nil
}

// TimeColumn returns the expression rows of table are aged by when the table is not
// partitioned by time: its first DateTime or Date column, or the finalised value of
// its first min(DateTime) aggregate (first_exposures' first_ts); "" if it has none.
func (s *Store) TimeColumn(ctx context.Context, table string) (string, error) {
	rows, err := s.conn.Query(ctx, "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = ?", table)
	if err != nil {
		return "", fmt.Errorf("gdpr/chstore: columns of %s: %w", table, err)
	}
	defer rows.Close()
	var expr string
	for rows.Next() && expr == "" {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return "", err
		}
		switch {
		case typ == "DateTime" || typ == "Date":
			expr = quote(name)
		case typ == "AggregateFunction(min, DateTime)" || typ == "AggregateFunction(max, DateTime)":
			expr = "finalizeAggregation(" + quote(name) + ")"
		}
	}
	return expr, rows.Err()
}

// retentionMarker tags retention's mutations, so that a run does not start another
// while one is still rewriting the table.
const retentionMarker = "lift-retention"

// ExpireRows deletes the rows of table whose time (TimeColumn) is before cutoff, for
// tables whose partitions cannot be dropped by age. It starts a mutation only when
// there are such rows and no earlier one is still running, and returns how many rows
// it deletes.
func (s *Store) ExpireRows(ctx context.Context, table string, cutoff time.Time) (uint64, error) {
	expr, err := s.TimeColumn(ctx, table)
	if err != nil || expr == "" {
		return 0, err
	}
	running, err := s.retentionRunning(ctx, table)
	if err != nil || running {
		return 0, err
	}
	cond := fmt.Sprintf("%s < toDateTime('%s')", expr, cutoff.UTC().Format("2006-01-02 15:04:05"))
	var n uint64
	if err := s.conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s WHERE %s", quote(table), cond)).Scan(&n); err != nil {
		return 0, fmt.Errorf("gdpr/chstore: expired rows of %s: %w", table, err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DELETE WHERE %s AND '%s' != ''", quote(table), cond, retentionMarker)); err != nil {
		return 0, fmt.Errorf("gdpr/chstore: expire rows of %s: %w", table, err)
	}
	return n, nil
}

func (s *Store) retentionRunning(ctx context.Context, table string) (bool, error) {
	var n uint64
	err := s.conn.QueryRow(ctx, `SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = ?
		AND NOT is_done AND position(command, ?) > 0`, table, "'"+retentionMarker+"'").Scan(&n)
	if err != nil {
		return false, fmt.Errorf("gdpr/chstore: mutations of %s: %w", table, err)
	}
	return n > 0, nil
}
