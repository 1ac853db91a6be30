package worker

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the worker's own measurements; nil when Config.Metrics is not set.
type metrics struct {
	duration *prometheus.HistogramVec
	latency  *prometheus.HistogramVec
	outcomes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	buckets := prometheus.ExponentialBuckets(0.0005, 2.5, 16) // 0.5 ms to about 4 h
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "chronoq_job_duration_seconds",
			Help: "Run time of job attempts, by queue and task.", Buckets: buckets}, []string{"queue", "task"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "chronoq_enqueue_to_start_seconds",
			Help: "Time from an attempt's due time (its enqueue, scheduled time or retry time) to its start, by queue and task.", Buckets: buckets}, []string{"queue", "task"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chronoq_job_outcomes_total",
			Help: "Attempts by queue, task and outcome (succeeded, retried, failed, canceled)."}, []string{"queue", "task", "outcome"}),
	}
	// several workers in one process may share a registry: the second takes the
	// first one's collectors
	var err error
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.latency, err = register(reg, m.latency); err != nil {
		return nil, err
	}
	if m.outcomes, err = register(reg, m.outcomes); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// observe records one decided attempt. waited is from the attempt's due time (enqueue,
// scheduled time or retry time) to its start, when known.
func (m *metrics) observe(queue, task string, ran, waited time.Duration, known bool, outcome string) {
	if m == nil {
		return
	}
	if ran > 0 { // outcomes decided before the handler ran (no record, too late) have no run time
		m.duration.WithLabelValues(queue, task).Observe(ran.Seconds())
	}
	if known {
		// a job enqueued while a fetch was in flight can start "before" it arrived,
		// by the clock skew between the two calls: count it as no wait
		m.latency.WithLabelValues(queue, task).Observe(max(waited, 0).Seconds())
	}
	m.outcomes.WithLabelValues(queue, task, outcome).Inc()
}
