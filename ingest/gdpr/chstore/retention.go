package chstore

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/liftlab/lift/ingest/gdpr"
	"github.com/liftlab/lift/migrations"
)

// Partitions lists the active partitions of every table of the database (lift's
// migration bookkeeping excepted), with the time of their newest row: the greatest
// max_time or max_date of their parts, which ClickHouse keeps from the partition
// key's DateTime or Date columns (zero when the key has none). Partitions without
// rows are left out. On a cluster it reads every shard (one replica of each: the
// replicas share their parts) and reports each partition once, under the name
// analysts use, with the rows of all shards.
func (s *Store) Partitions(ctx context.Context) ([]gdpr.Partition, error) {
	l, err := s.layout(ctx)
	if err != nil {
		return nil, err
	}
	type key struct{ table, id string }
	byKey := map[key]*gdpr.Partition{}
	for _, sh := range l.shards {
		parts, err := shardPartitions(ctx, sh.conn)
		if err != nil {
			return nil, fmt.Errorf("gdpr/chstore: partitions%s: %w", sh.on(), err)
		}
		for _, p := range parts {
			name, ok := l.analyst(p.Table)
			if !ok {
				continue
			}
			k := key{name, p.ID}
			if q := byKey[k]; q != nil {
				q.Rows += p.Rows
				if p.Newest.After(q.Newest) {
					q.Newest = p.Newest
				}
				continue
			}
			p.Table = name
			byKey[k] = &p
		}
	}
	out := make([]gdpr.Partition, 0, len(byKey))
	for _, p := range byKey {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b gdpr.Partition) int {
		return cmp.Or(strings.Compare(a.Table, b.Table), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// shardPartitions lists the partitions of the server conn reaches.
func shardPartitions(ctx context.Context, conn driver.Conn) ([]gdpr.Partition, error) {
	rows, err := conn.Query(ctx, `SELECT table, partition_id, sum(rows), max(max_time), max(max_date)
		FROM system.parts WHERE database = currentDatabase() AND active AND table != ?
		GROUP BY table, partition_id HAVING sum(rows) > 0 ORDER BY table, partition_id`, migrations.VersionTable)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []gdpr.Partition
	for rows.Next() {
		var p gdpr.Partition
		var maxTime, maxDate time.Time
		if err := rows.Scan(&p.Table, &p.ID, &p.Rows, &maxTime, &maxDate); err != nil {
			return nil, err
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

// DropPartition drops one partition by its id: on a cluster from table's local table
// on one replica of every shard (the other replicas follow through ZooKeeper; a
// shard without the partition has nothing to drop).
func (s *Store) DropPartition(ctx context.Context, table, id string) error {
	if !partitionID.MatchString(id) {
		return fmt.Errorf("gdpr/chstore: unexpected partition id %q", id)
	}
	l, err := s.layout(ctx)
	if err != nil {
		return err
	}
	local := l.local(table)
	for _, sh := range l.shards {
		if err := sh.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION ID '%s'", quote(local), id)); err != nil {
			return fmt.Errorf("gdpr/chstore: drop partition %s of %s%s: %w", id, local, sh.on(), err)
		}
	}
	return nil
}

// TimeColumn returns the expression rows of table are aged by when the table is not
// partitioned by time: its first DateTime or Date column, or the finalised value of
// its first min(DateTime) aggregate (first_exposures' first_ts); "" if it has none.
func (s *Store) TimeColumn(ctx context.Context, table string) (string, error) {
	l, err := s.layout(ctx)
	if err != nil {
		return "", err
	}
	rows, err := s.conn.Query(ctx, "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = ?", l.local(table))
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
// it deletes. On a cluster it counts and starts the mutation shard by shard (on one
// replica of each), and an earlier mutation still running on any replica, or a
// replica that cannot be read, holds it back.
func (s *Store) ExpireRows(ctx context.Context, table string, cutoff time.Time) (uint64, error) {
	expr, err := s.TimeColumn(ctx, table)
	if err != nil || expr == "" {
		return 0, err
	}
	l, err := s.layout(ctx)
	if err != nil {
		return 0, err
	}
	local := l.local(table)
	running, err := retentionRunning(ctx, l, local)
	if err != nil || running {
		return 0, err
	}
	cond := fmt.Sprintf("%s < toDateTime('%s')", expr, cutoff.UTC().Format("2006-01-02 15:04:05"))
	var total uint64
	for _, sh := range l.shards {
		var n uint64
		if err := sh.conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s WHERE %s", quote(local), cond)).Scan(&n); err != nil {
			return total, fmt.Errorf("gdpr/chstore: expired rows of %s%s: %w", local, sh.on(), err)
		}
		if n == 0 {
			continue
		}
		if err := sh.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DELETE WHERE %s AND '%s' != ''", quote(local), cond, retentionMarker)); err != nil {
			return total, fmt.Errorf("gdpr/chstore: expire rows of %s%s: %w", local, sh.on(), err)
		}
		total += n
	}
	return total, nil
}

// retentionRunning reports whether a retention mutation of table is still running
// on any replica.
func retentionRunning(ctx context.Context, l *layout, table string) (bool, error) {
	for _, sh := range l.shards {
		for _, r := range sh.replicas {
			var n uint64
			err := r.conn.QueryRow(ctx, `SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = ?
				AND NOT is_done AND position(command, ?) > 0`, table, "'"+retentionMarker+"'").Scan(&n)
			if err != nil {
				return false, fmt.Errorf("gdpr/chstore: mutations of %s on %s: %w", table, r, err)
			}
			if n > 0 {
				return true, nil
			}
		}
	}
	return false, nil
}
