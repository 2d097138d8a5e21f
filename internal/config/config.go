// Package config reads lift's settings from LIFT_* environment variables.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is every setting lift reads at start-up. Defaults point at the local
// services that `make run` starts.
type Config struct {
	HTTPAddr       string // LIFT_HTTP_ADDR
	AdminAddr      string // LIFT_ADMIN_ADDR: pprof and metrics; "" = off
	PostgresURL    string // LIFT_POSTGRES_URL
	ClickHouseAddr string // LIFT_CLICKHOUSE_ADDR, native protocol; host:port, or several comma-separated
	ClickHouseDB   string // LIFT_CLICKHOUSE_DB
	// ClickHouseCluster (LIFT_CLICKHOUSE_CLUSTER) names the cluster in ClickHouse's
	// remote_servers that lift's tables live on (docs/deploy.md); "" = one server.
	ClickHouseCluster string
	AMQPURL           string        // LIFT_AMQP_URL
	LogFormat         string        // LIFT_LOG_FORMAT: json or text
	LogLevel          slog.Level    // LIFT_LOG_LEVEL: debug, info, warn, error
	Resync            time.Duration // LIFT_RESYNC_INTERVAL: full snapshot reload period
	MaxBodyBytes      int64         // LIFT_MAX_BODY_BYTES: request body limit
	ShutdownGrace     time.Duration // LIFT_SHUTDOWN_GRACE: time to drain on SIGTERM

	IngestBatchRows int           // LIFT_INGEST_BATCH_ROWS: rows per ClickHouse insert
	IngestBatchWait time.Duration // LIFT_INGEST_BATCH_WAIT: longest wait before an insert
	IngestPrefetch  int           // LIFT_INGEST_PREFETCH: unacked messages per consumer
	IngestConsumers int           // LIFT_INGEST_CONSUMERS: consumers per ingest process
	ExposureBuffer  int           // LIFT_EXPOSURE_BUFFER: exposures queued before drops
	EventsRate      int           // LIFT_EVENTS_RATE: POST /v1/events requests/s per key; 0 = no limit
	DecideRate      int           // LIFT_DECIDE_RATE: /v1/decide and OFREP requests/s per key; 0 = no limit
	APIRate         int           // LIFT_API_RATE: /api/v1 requests/s per key or user; 0 = no limit

	StreamHeartbeat time.Duration // LIFT_STREAM_HEARTBEAT: comment sent on idle GrowthBook streams (/sub)
	StreamsPerKey   int           // LIFT_STREAMS_PER_KEY: open GrowthBook streams one client key may hold

	// Privacy (docs/privacy.md).
	PseudonymizeKey string        // LIFT_PSEUDONYMIZE_KEY: HMAC key for user ids; empty: ids kept
	ScrubPatterns   []string      // LIFT_SCRUB_PATTERNS: value patterns removed from properties
	ScrubProperties []string      // LIFT_SCRUB_PROPERTIES: denylist of property names
	ConsentRequired bool          // LIFT_CONSENT_REQUIRED: no consent in a request means none given
	RetentionMonths int           // LIFT_RETENTION_MONTHS: default retention of every ClickHouse table
	RetentionEvery  time.Duration // LIFT_RETENTION_INTERVAL: how often retention is enforced
	ErasurePoll     time.Duration // LIFT_ERASURE_POLL: how often erasure jobs check their mutations

	// DemoClientKey, when set, serves the demo shop at /demo using this client key
	// (LIFT_DEMO_CLIENT_KEY; make run sets it).
	DemoClientKey string

	SegmentShards       int           // LIFT_SEGMENT_SHARDS: shards the segment engine's users are split into
	SegmentRebuildDelay time.Duration // LIFT_SEGMENT_REBUILD_DELAY: how far back ClickHouse is complete for a rebuild
	SegmentRebuild      bool          // LIFT_SEGMENT_REBUILD: rebuild segments without state from ClickHouse

	// Outbound requests: segment webhooks reach public addresses, and besides them
	// only these networks (LIFT_WEBHOOK_ALLOW_NETS: comma-separated CIDRs or IPs).
	WebhookAllowNets []netip.Prefix

	// HTTP trust boundary (docs/security.md). TrustedProxies are the peers whose
	// X-Forwarded-For and X-Forwarded-Proto lift believes (LIFT_TRUSTED_PROXIES, a
	// comma-separated list of CIDRs or addresses); none by default: the client address
	// is the peer's, and a request is HTTPS only over TLS.
	TrustedProxies []netip.Prefix
}

// Load reads the configuration through getenv and validates it.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		HTTPAddr:          or(getenv("LIFT_HTTP_ADDR"), "127.0.0.1:8080"),
		AdminAddr:         getenv("LIFT_ADMIN_ADDR"),
		PostgresURL:       or(getenv("LIFT_POSTGRES_URL"), "postgres://postgres@127.0.0.1:5432/lift?sslmode=disable"),
		ClickHouseAddr:    or(getenv("LIFT_CLICKHOUSE_ADDR"), "127.0.0.1:9000"),
		ClickHouseDB:      or(getenv("LIFT_CLICKHOUSE_DB"), "lift"),
		ClickHouseCluster: getenv("LIFT_CLICKHOUSE_CLUSTER"),
		AMQPURL:           or(getenv("LIFT_AMQP_URL"), "amqp://guest:guest@127.0.0.1:5672/"),
		DemoClientKey:     getenv("LIFT_DEMO_CLIENT_KEY"),
		LogFormat:         or(getenv("LIFT_LOG_FORMAT"), "json"),
	}
	var err error
	if err = c.LogLevel.UnmarshalText([]byte(or(getenv("LIFT_LOG_LEVEL"), "info"))); err != nil {
		return c, fmt.Errorf("LIFT_LOG_LEVEL: %w", err)
	}
	if c.Resync, err = duration(getenv, "LIFT_RESYNC_INTERVAL", 30*time.Second); err != nil {
		return c, err
	}
	if c.ShutdownGrace, err = duration(getenv, "LIFT_SHUTDOWN_GRACE", 15*time.Second); err != nil {
		return c, err
	}
	if v := getenv("LIFT_MAX_BODY_BYTES"); v != "" {
		if c.MaxBodyBytes, err = strconv.ParseInt(v, 10, 64); err != nil || c.MaxBodyBytes <= 0 {
			return c, fmt.Errorf("LIFT_MAX_BODY_BYTES: want a positive number of bytes, got %q", v)
		}
	} else {
		c.MaxBodyBytes = 1 << 20
	}
	if c.IngestBatchWait, err = duration(getenv, "LIFT_INGEST_BATCH_WAIT", time.Second); err != nil {
		return c, err
	}
	if c.SegmentRebuildDelay, err = duration(getenv, "LIFT_SEGMENT_REBUILD_DELAY", 10*time.Second); err != nil {
		return c, err
	}
	switch v := getenv("LIFT_SEGMENT_REBUILD"); v {
	case "", "true", "1":
		c.SegmentRebuild = true
	case "false", "0":
	default:
		return c, fmt.Errorf("LIFT_SEGMENT_REBUILD: want true or false, got %q", v)
	}
	for _, n := range []struct {
		name string
		dst  *int
		def  int
	}{
		{"LIFT_INGEST_BATCH_ROWS", &c.IngestBatchRows, 10_000},
		{"LIFT_INGEST_PREFETCH", &c.IngestPrefetch, 1000},
		{"LIFT_INGEST_CONSUMERS", &c.IngestConsumers, 2},
		{"LIFT_EXPOSURE_BUFFER", &c.ExposureBuffer, 65_536},
		{"LIFT_SEGMENT_SHARDS", &c.SegmentShards, 4},
		{"LIFT_STREAMS_PER_KEY", &c.StreamsPerKey, 10_000},
	} {
		if *n.dst, err = positive(getenv, n.name, n.def); err != nil {
			return c, err
		}
	}
	for _, n := range []struct {
		name string
		dst  *int
		def  int
	}{
		{"LIFT_EVENTS_RATE", &c.EventsRate, 2000},
		{"LIFT_DECIDE_RATE", &c.DecideRate, 20_000},
		{"LIFT_API_RATE", &c.APIRate, 100},
	} {
		if *n.dst, err = nonNegative(getenv, n.name, n.def); err != nil {
			return c, err
		}
	}
	if c.PseudonymizeKey = getenv("LIFT_PSEUDONYMIZE_KEY"); c.PseudonymizeKey != "" && len(c.PseudonymizeKey) < 16 {
		return c, fmt.Errorf("LIFT_PSEUDONYMIZE_KEY: want at least 16 bytes (32 random bytes, hex-encoded, are a good key), got %d", len(c.PseudonymizeKey))
	}
	c.ScrubPatterns = list(getenv("LIFT_SCRUB_PATTERNS"), nil)
	c.ScrubProperties = list(getenv("LIFT_SCRUB_PROPERTIES"), nil)
	switch v := getenv("LIFT_CONSENT_REQUIRED"); v {
	case "", "false", "0":
	case "true", "1":
		c.ConsentRequired = true
	default:
		return c, fmt.Errorf("LIFT_CONSENT_REQUIRED: want true or false, got %q", v)
	}
	if c.RetentionMonths, err = positive(getenv, "LIFT_RETENTION_MONTHS", 13); err != nil {
		return c, err
	}
	if c.RetentionEvery, err = duration(getenv, "LIFT_RETENTION_INTERVAL", 24*time.Hour); err != nil {
		return c, err
	}
	if c.ErasurePoll, err = duration(getenv, "LIFT_ERASURE_POLL", time.Second); err != nil {
		return c, err
	}
	if c.StreamHeartbeat, err = duration(getenv, "LIFT_STREAM_HEARTBEAT", 25*time.Second); err != nil {
		return c, err
	}
	if c.WebhookAllowNets, err = networks(getenv("LIFT_WEBHOOK_ALLOW_NETS")); err != nil {
		return c, fmt.Errorf("LIFT_WEBHOOK_ALLOW_NETS: %w", err)
	}
	if c.TrustedProxies, err = networks(getenv("LIFT_TRUSTED_PROXIES")); err != nil {
		return c, fmt.Errorf("LIFT_TRUSTED_PROXIES: %w", err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return c, fmt.Errorf("LIFT_LOG_FORMAT: want json or text, got %q", c.LogFormat)
	}
	if err := clickHouseAddrs(c.ClickHouseAddr); err != nil {
		return c, fmt.Errorf("LIFT_CLICKHOUSE_ADDR: %w", err)
	}
	if c.ClickHouseCluster != "" && !identifier.MatchString(c.ClickHouseCluster) {
		return c, fmt.Errorf("LIFT_CLICKHOUSE_CLUSTER: want a cluster name of letters, digits and _, got %q", c.ClickHouseCluster)
	}
	for name, u := range map[string]string{"LIFT_POSTGRES_URL": c.PostgresURL, "LIFT_AMQP_URL": c.AMQPURL} {
		if _, err := url.Parse(u); err != nil {
			return c, fmt.Errorf("%s: %w", name, err)
		}
	}
	return c, nil
}

// LogValue masks passwords so the configuration can be logged at start-up.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr),
		slog.String("admin_addr", c.AdminAddr),
		slog.String("postgres_url", mask(c.PostgresURL)),
		slog.String("clickhouse_addr", c.ClickHouseAddr),
		slog.String("clickhouse_db", c.ClickHouseDB),
		slog.String("clickhouse_cluster", c.ClickHouseCluster),
		slog.String("amqp_url", mask(c.AMQPURL)),
		slog.Duration("resync", c.Resync),
		slog.Int64("max_body_bytes", c.MaxBodyBytes),
		slog.Int("ingest_batch_rows", c.IngestBatchRows),
		slog.Duration("ingest_batch_wait", c.IngestBatchWait),
		slog.Int("ingest_prefetch", c.IngestPrefetch),
		slog.Int("ingest_consumers", c.IngestConsumers),
		slog.Int("exposure_buffer", c.ExposureBuffer),
		slog.Int("events_rate", c.EventsRate),
		slog.Int("decide_rate", c.DecideRate),
		slog.Int("api_rate", c.APIRate),
		slog.Duration("stream_heartbeat", c.StreamHeartbeat),
		slog.Int("streams_per_key", c.StreamsPerKey),
		slog.Bool("pseudonymize", c.PseudonymizeKey != ""), // never the key itself
		slog.Any("scrub_patterns", c.ScrubPatterns),
		slog.Any("scrub_properties", c.ScrubProperties),
		slog.Bool("consent_required", c.ConsentRequired),
		slog.Int("retention_months", c.RetentionMonths),
		slog.Duration("retention_interval", c.RetentionEvery),
		slog.Duration("erasure_poll", c.ErasurePoll),
		slog.Bool("demo", c.DemoClientKey != ""),
		slog.Int("segment_shards", c.SegmentShards),
		slog.Duration("segment_rebuild_delay", c.SegmentRebuildDelay),
		slog.Bool("segment_rebuild", c.SegmentRebuild),
		slog.Any("webhook_allow_nets", c.WebhookAllowNets),
		slog.Any("trusted_proxies", c.TrustedProxies),
	)
}

func mask(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// list reads a comma-separated setting: def when unset, nothing for "none".
func list(v string, def []string) []string {
	switch strings.TrimSpace(v) {
	case "":
		return def
	case "none":
		return []string{}
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// networks parses a comma-separated list of networks (10.1.0.0/16) and single
// addresses (192.168.5.7, taken as /32 or /128).
func networks(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range list(v, nil) {
		p, err := netip.ParsePrefix(item)
		if !strings.Contains(item, "/") {
			var a netip.Addr
			if a, err = netip.ParseAddr(item); err == nil && a.Zone() != "" {
				return nil, fmt.Errorf("%q: want an address without a zone", item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		switch {
		case err != nil:
			return nil, fmt.Errorf("%q is neither an IP address nor a network such as 10.1.0.0/16", item)
		case p.Addr().Is4In6():
			return nil, fmt.Errorf("%q: write an IPv4 network in IPv4 form (a.b.c.d/n)", item)
		case p != p.Masked():
			return nil, fmt.Errorf("%q has address bits beyond its prefix length: did you mean %s?", item, p.Masked())
		}
		out = append(out, p)
	}
	return out, nil
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// clickHouseAddrs checks a comma-separated list of host:port addresses.
func clickHouseAddrs(v string) error {
	n := 0
	for a := range strings.SplitSeq(v, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			return fmt.Errorf("want host:port[,host:port…], got %q", v)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("bad port in %q", a)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("want host:port[,host:port…], got %q", v)
	}
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func duration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: want a positive duration such as 30s, got %q", name, v)
	}
	return d, nil
}

func positive(getenv func(string) string, name string, def int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: want a positive integer, got %q", name, v)
	}
	return n, nil
}

func nonNegative(getenv func(string) string, name string, def int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: want 0 (no limit) or a positive integer, got %q", name, v)
	}
	return n, nil
}
