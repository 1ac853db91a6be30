// Package prommetrics reports a worker's attempts and slots to Prometheus: it
// implements worker.Observer and worker.SlotsObserver with four collectors registered
// on a prometheus.Registerer.
//
//   - chronoq_job_duration_seconds{queue,task}: a histogram of the handlers' run times
//     (0.5 ms to about 4 h), for attempts whose handler returned;
//   - chronoq_enqueue_to_start_seconds{queue,task}: a histogram of the wait from an
//     attempt's due time (its enqueue, scheduled time or retry time) to its start;
//   - chronoq_job_outcomes_total{queue,task,outcome}: attempts by outcome (succeeded,
//     retried, failed, canceled);
//   - chronoq_worker_slots: the job slots of the process's running workers, summed
//     (their concurrency, or the size autoscaling chose: worker.Config.Autoscale).
//
// Give the observer to worker.Config.Observer and serve the registry with promhttp:
//
//	reg := prometheus.NewRegistry()
//	obs, err := prommetrics.New(reg)
//	...
//	w, err := worker.New(c, worker.Config{Observer: obs})
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Several workers of one process may share a registry: each New on it returns an
// observer that feeds the same collectors, so every attempt is counted once. Workers
// in other processes each serve their own; Prometheus sums them (docs/operations.md).
//
// The package lives apart from package worker so that a worker which reports no
// metrics does not link Prometheus.
package prommetrics
