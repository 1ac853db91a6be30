package prommetrics

import (
	"errors"
	"fmt"
	"sync"

	"github.com/chronoq/chronoq/worker"
	"github.com/prometheus/client_golang/prometheus"
)

// Observer feeds a worker's attempts to its Prometheus collectors. Make it with New.
type Observer struct {
	duration *prometheus.HistogramVec
	latency  *prometheus.HistogramVec
	outcomes *prometheus.CounterVec
	slots    prometheus.Gauge

	mu       sync.Mutex
	byWorker map[string]int // the slots each worker fed by this observer told it last
}

var (
	_ worker.Observer      = (*Observer)(nil)
	_ worker.SlotsObserver = (*Observer)(nil)
)

// New registers the worker collectors on reg and returns the observer that feeds them.
// When reg already holds them (another worker of the process registered them), the
// observer feeds those. It fails when reg holds a different collector under one of the
// names.
func New(reg prometheus.Registerer) (*Observer, error) {
	if reg == nil {
		return nil, errors.New("prommetrics: nil Registerer")
	}
	buckets := prometheus.ExponentialBuckets(0.0005, 2.5, 16) // 0.5 ms to about 4 h
	o := &Observer{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "chronoq_job_duration_seconds",
			Help: "Run time of job attempts, by queue and task.", Buckets: buckets}, []string{"queue", "task"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "chronoq_enqueue_to_start_seconds",
			Help: "Time from an attempt's due time (its enqueue, scheduled time or retry time) to its start, by queue and task.", Buckets: buckets}, []string{"queue", "task"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chronoq_job_outcomes_total",
			Help: "Attempts by queue, task and outcome (succeeded, retried, failed, canceled)."}, []string{"queue", "task", "outcome"}),
		slots: prometheus.NewGauge(prometheus.GaugeOpts{Name: "chronoq_worker_slots",
			Help: "Job slots of the process's running workers: their concurrency, or the size autoscaling chose."}),
		byWorker: map[string]int{},
	}
	// several workers in one process may share a registry: the second takes the
	// first one's collectors. A clash on a later one takes back what this call
	// registered, so a failed New leaves the registry as it found it.
	var added []prometheus.Collector
	fail := func(err error) (*Observer, error) {
		for _, c := range added {
			reg.Unregister(c)
		}
		return nil, err
	}
	var err error
	var isNew bool
	if o.duration, isNew, err = register(reg, o.duration); err != nil {
		return fail(err)
	} else if isNew {
		added = append(added, o.duration)
	}
	if o.latency, isNew, err = register(reg, o.latency); err != nil {
		return fail(err)
	} else if isNew {
		added = append(added, o.latency)
	}
	if o.outcomes, isNew, err = register(reg, o.outcomes); err != nil {
		return fail(err)
	} else if isNew {
		added = append(added, o.outcomes)
	}
	if o.slots, _, err = register(reg, o.slots); err != nil {
		return fail(err)
	}
	return o, nil
}

// register registers c on reg, or takes the collector of the same description
// already there; it reports whether c itself was registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, bool, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, false, nil
		}
	}
	if err != nil {
		return c, false, fmt.Errorf("prommetrics: %w", err)
	}
	return c, true, nil
}

// Observe records one decided attempt. A nil *Observer records nothing.
func (o *Observer) Observe(a worker.Attempt) {
	if o == nil {
		return
	}
	if a.Ran > 0 { // outcomes decided before the handler returned have no run time
		o.duration.WithLabelValues(a.Queue, a.Task).Observe(a.Ran.Seconds())
	}
	if a.WaitKnown {
		o.latency.WithLabelValues(a.Queue, a.Task).Observe(a.Wait.Seconds())
	}
	o.outcomes.WithLabelValues(a.Queue, a.Task, string(a.Outcome)).Inc()
}

// ObserveSlots sets worker's share of the chronoq_worker_slots gauge, the sum over
// the workers of the process that share the registry (0: the worker stopped). A nil
// *Observer records nothing.
func (o *Observer) ObserveSlots(worker string, slots int) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.slots.Add(float64(slots - o.byWorker[worker]))
	if slots == 0 {
		delete(o.byWorker, worker)
	} else {
		o.byWorker[worker] = slots
	}
}
