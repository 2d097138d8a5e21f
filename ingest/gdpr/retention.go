package gdpr

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/liftlab/lift/internal/derrors"
)

// Retention: every ClickHouse table keeps its rows for a number of months (the
// default, or its own), enforced by dropping whole partitions once the newest row in
// them is older than that. Dropping a partition is instant and rewrites nothing,
// unlike deleting rows; the price is granularity: with the monthly partitions of
// lift's tables a row lives between its retention and one month more. A table not
// partitioned by time (first_exposures) has its expired rows deleted instead, by a
// mutation on its time column, started only when there are such rows.

// Partition is one partition of a table, as the store sees it.
type Partition struct {
	Table string `json:"table"`
	ID    string `json:"partition"`
	Rows  uint64 `json:"rows"`
	// Newest is the time of the newest row, from the partition key's columns; zero
	// when the table is not partitioned by time.
	Newest time.Time `json:"newest"`
}

// Partitions reads and drops ClickHouse partitions.
type Partitions interface {
	// Partitions lists the partitions of every table that stores rows.
	Partitions(ctx context.Context) ([]Partition, error)
	DropPartition(ctx context.Context, table, id string) error
	// TimeColumn names the column a table not partitioned by time is aged by ("":
	// none, and its retention cannot be enforced).
	TimeColumn(ctx context.Context, table string) (string, error)
	// ExpireRows deletes the table's rows older than cutoff and returns how many.
	ExpireRows(ctx context.Context, table string, cutoff time.Time) (uint64, error)
}

// Drop is a partition retention dropped.
type Drop struct {
	At        time.Time `json:"at"`
	Table     string    `json:"table"`
	Partition string    `json:"partition"`
	Newest    time.Time `json:"newest"`
	Rows      uint64    `json:"rows"`
}

// Policies keeps the retention settings.
type Policies interface {
	// Policies returns the tables whose retention differs from the default, in months.
	Policies(ctx context.Context) (map[string]int, error)
	// SetPolicy sets a table's retention (0: back to the default) and records the
	// change in the audit log.
	SetPolicy(ctx context.Context, actor, table string, months int) error
	RecordDrop(ctx context.Context, d Drop) error
	// Drops returns the newest drops first, at most limit.
	Drops(ctx context.Context, limit int) ([]Drop, error)
}

// Retention enforces and reports the retention of every table.
type Retention struct {
	Partitions Partitions
	Policies   Policies
	// DefaultMonths applies to every table without a policy of its own.
	DefaultMonths int
	// Every is the period of enforcement (daily by default).
	Every time.Duration
	Log   *slog.Logger
	Now   func() time.Time
}

func (r *Retention) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Run enforces retention at once and then every Every, until ctx ends.
func (r *Retention) Run(ctx context.Context) {
	every := r.Every
	if every <= 0 {
		every = 24 * time.Hour
	}
	for {
		drops, err := r.Enforce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			r.Log.Warn("retention: enforcement failed; retrying at the next run", "err", err, "dropped", len(drops))
		case len(drops) > 0:
			r.Log.Info("retention: dropped partitions", "dropped", len(drops))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// Cutoff is the time before which a table's rows are past retention.
func Cutoff(now time.Time, months int) time.Time { return now.AddDate(0, -months, 0) }

// Enforce drops every partition whose newest row is older than its table's
// retention, recording each drop.
func (r *Retention) Enforce(ctx context.Context) ([]Drop, error) {
	policies, err := r.Policies.Policies(ctx)
	if err != nil {
		return nil, err
	}
	parts, err := r.Partitions.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	cutoff := func(table string) time.Time {
		if m, ok := policies[table]; ok {
			return Cutoff(now, m)
		}
		return Cutoff(now, r.DefaultMonths)
	}
	var drops []Drop
	byTime := map[string]bool{}
	for _, p := range parts {
		byTime[p.Table] = byTime[p.Table] || !p.Newest.IsZero()
	}
	for table, partitioned := range byTime {
		if partitioned {
			continue
		}
		n, err := r.Partitions.ExpireRows(ctx, table, cutoff(table))
		if err != nil {
			return drops, err
		}
		if n > 0 {
			d := Drop{At: now, Table: table, Partition: "rows before " + cutoff(table).Format(time.DateOnly), Newest: cutoff(table), Rows: n}
			if err := r.Policies.RecordDrop(ctx, d); err != nil {
				return drops, err
			}
			drops = append(drops, d)
		}
	}
	for _, p := range parts {
		if p.Newest.IsZero() || !p.Newest.Before(cutoff(p.Table)) {
			continue
		}
		if err := r.Partitions.DropPartition(ctx, p.Table, p.ID); err != nil {
			return drops, fmt.Errorf("drop partition %s of %s: %w", p.ID, p.Table, err)
		}
		d := Drop{At: now, Table: p.Table, Partition: p.ID, Newest: p.Newest, Rows: p.Rows}
		if err := r.Policies.RecordDrop(ctx, d); err != nil {
			return drops, err
		}
		drops = append(drops, d)
	}
	return drops, nil
}

// TableRetention is one table's retention, for the settings page and the API.
type TableRetention struct {
	Table  string `json:"table"`
	Months int    `json:"months"`
	// Default is true when the table follows DefaultMonths.
	Default bool `json:"default"`
	// Method is how retention is enforced: "partitions" (dropped whole), "rows"
	// (a table not partitioned by time: expired rows deleted by their TimeColumn) or
	// "none" (no time to age rows by: listed so that nobody assumes otherwise).
	Method     string    `json:"method"`
	TimeColumn string    `json:"time_column,omitempty"`
	Partitions int       `json:"partitions"`
	Rows       uint64    `json:"rows"`
	Oldest     time.Time `json:"oldest,omitempty"` // newest row of the oldest partition
	Cutoff     time.Time `json:"cutoff"`
}

// Overview is the retention of every table and the latest drops.
type Overview struct {
	DefaultMonths int              `json:"default_months"`
	Tables        []TableRetention `json:"tables"`
	Drops         []Drop           `json:"recent_drops"`
}

// Overview reports every table's retention.
func (r *Retention) Overview(ctx context.Context) (Overview, error) {
	policies, err := r.Policies.Policies(ctx)
	if err != nil {
		return Overview{}, err
	}
	parts, err := r.Partitions.Partitions(ctx)
	if err != nil {
		return Overview{}, err
	}
	now := r.now().UTC()
	byTable := map[string]*TableRetention{}
	for _, p := range parts {
		t := byTable[p.Table]
		if t == nil {
			t = &TableRetention{Table: p.Table, Months: r.DefaultMonths, Default: true}
			if m, ok := policies[p.Table]; ok {
				t.Months, t.Default = m, false
			}
			t.Cutoff = Cutoff(now, t.Months)
			byTable[p.Table] = t
		}
		t.Partitions++
		t.Rows += p.Rows
		if !p.Newest.IsZero() {
			t.Method = "partitions"
			if t.Oldest.IsZero() || p.Newest.Before(t.Oldest) {
				t.Oldest = p.Newest
			}
		}
	}
	o := Overview{DefaultMonths: r.DefaultMonths, Tables: []TableRetention{}}
	for _, t := range byTable {
		if t.Method == "" {
			if t.TimeColumn, err = r.Partitions.TimeColumn(ctx, t.Table); err != nil {
				return Overview{}, err
			}
			t.Method = "none"
			if t.TimeColumn != "" {
				t.Method = "rows"
			}
		}
		o.Tables = append(o.Tables, *t)
	}
	slices.SortFunc(o.Tables, func(a, b TableRetention) int { return strings.Compare(a.Table, b.Table) })
	if o.Drops, err = r.Policies.Drops(ctx, 20); err != nil {
		return Overview{}, err
	}
	if o.Drops == nil {
		o.Drops = []Drop{}
	}
	return o, nil
}

// SetPolicy sets a table's retention in months (0: the default); it returns a
// derrors.Invalid (*derrors.ValidationError) for a negative or absurd number.
func (r *Retention) SetPolicy(ctx context.Context, actor, table string, months int) error {
	if months < 0 || months > 1200 {
		return derrors.Invalid("months", "must be between 1 and 1200 (0: the default)")
	}
	if table == "" {
		return derrors.Invalid("table", "is required")
	}
	return r.Policies.SetPolicy(ctx, actor, table, months)
}
