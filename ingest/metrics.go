package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingestion pipeline's Prometheus series, shared by the collector, the
// exposure log, the consumers and their adapters.
type Metrics struct {
	Accepted           prometheus.Counter
	Rejected           *prometheus.CounterVec
	ConfirmLatency     prometheus.Histogram
	QueueDepth         *prometheus.GaugeVec
	BatchRows          prometheus.Histogram
	InsertLatency      prometheus.Histogram
	Lag                prometheus.Histogram
	ConsumerRestarts   prometheus.Counter
	Inserted           prometheus.Counter
	DeadLettered       prometheus.Counter
	ExposuresPublished prometheus.Counter
	ExposuresDropped   *prometheus.CounterVec
}

// NewMetrics creates the series and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	latency := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	m := &Metrics{
		Accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lift_events_accepted_total",
			Help: "Events accepted by the collector (confirmed by RabbitMQ).",
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lift_events_rejected_total",
			Help: "Events refused by the collector or a consumer, by the first invalid field.",
		}, []string{"reason"}),
		ConfirmLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lift_publish_confirm_seconds",
			Help:    "Time from publishing a batch of messages to RabbitMQ confirming all of them.",
			Buckets: latency,
		}),
		QueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lift_queue_depth_messages",
			Help: "Messages ready in a RabbitMQ queue, sampled by the consumers.",
		}, []string{"queue"}),
		BatchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lift_consumer_batch_rows",
			Help:    "Rows per ClickHouse insert by the ingest consumers.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		InsertLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lift_consumer_insert_seconds",
			Help:    "Time of one successful ClickHouse batch insert.",
			Buckets: latency,
		}),
		Lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lift_consumer_lag_seconds",
			Help:    "Per ClickHouse insert, time from the collector receiving the batch's oldest message to the insert succeeding.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
		ConsumerRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lift_consumer_restarts_total",
			Help: "Ingest consumer sessions ended by an error (connection or channel lost, broker timeout) and restarted.",
		}),
		Inserted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lift_events_inserted_total",
			Help: "Rows inserted into ClickHouse by the ingest consumers (redeliveries included).",
		}),
		DeadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lift_events_dead_lettered_total",
			Help: "Invalid events and unparseable messages sent to lift.dead by the consumers.",
		}),
		ExposuresPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lift_exposures_published_total",
			Help: "Exposure events from /v1/decide confirmed by RabbitMQ.",
		}),
		ExposuresDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lift_exposures_dropped_total",
			Help: "Exposure events from /v1/decide dropped, by reason (buffer_full, shutdown).",
		}, []string{"reason"}),
	}
	for _, reason := range []string{"buffer_full", "shutdown"} {
		m.ExposuresDropped.WithLabelValues(reason) // exported at 0, for alerts on increase()
	}
	reg.MustRegister(m.Accepted, m.Rejected, m.ConfirmLatency, m.QueueDepth, m.BatchRows,
		m.InsertLatency, m.Lag, m.ConsumerRestarts, m.Inserted, m.DeadLettered, m.ExposuresPublished, m.ExposuresDropped)
	return m
}
