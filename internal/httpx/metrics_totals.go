package httpx

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Totals sums the requests counted so far over every method and route,
// and those of them answered with a 5xx status: the admin overview samples
// them once a minute, from the counters /metrics reports.
func (m *HTTPMetrics) Totals() (requests, errors uint64) {
	ch := make(chan prometheus.Metric)
	go func() { m.requests.Collect(ch); close(ch) }()
	for metric := range ch {
		var d dto.Metric
		if metric.Write(&d) != nil || d.Counter == nil {
			continue
		}
		n := uint64(d.Counter.GetValue())
		requests += n
		for _, l := range d.Label {
			if l.GetName() == "status" && strings.HasPrefix(l.GetValue(), "5") {
				errors += n
			}
		}
	}
	return requests, errors
}
