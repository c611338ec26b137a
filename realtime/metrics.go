package realtime

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the hub's Prometheus metrics.
type Metrics struct {
	Connections   prometheus.Gauge
	Subscriptions prometheus.Gauge
	Events        prometheus.Counter
	Dropped       prometheus.Counter
	Latency       prometheus.Histogram
}

// NewMetrics makes the hub's metrics and registers them with reg (nil
// registers nowhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "abe", Subsystem: "realtime", Name: "connections",
			Help: "Open realtime sockets."}),
		Subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "abe", Subsystem: "realtime", Name: "subscriptions",
			Help: "Open subscriptions."}),
		Events: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "abe", Subsystem: "realtime", Name: "events_sent_total",
			Help: "Events queued to subscribers."}),
		Dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "abe", Subsystem: "realtime", Name: "slow_disconnects_total",
			Help: "Sockets closed because their send queue was full."}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "abe", Subsystem: "realtime", Name: "delivery_seconds",
			Help:    "Time from a change's transaction to its dispatch to subscribers.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
	}
	if reg != nil {
		reg.MustRegister(m.Connections, m.Subscriptions, m.Events, m.Dropped, m.Latency)
	}
	return m
}
