package dashboard

import (
	"context"
	"time"

	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/prometheus/client_golang/prometheus"
)

// collector reads queue depths, counters and ranking quality at each scrape: counts and
// ranges only, never scans.
type collector struct{ c *queue.Client }

// NewCollector returns the Redis-wide gauges and counters /metrics serves (depth by
// queue and state, lifetime counters, workers, learned means, ranking quality), read
// from Redis at each scrape. Register it in a worker's own registry to serve them on
// the worker's port.
func NewCollector(c *queue.Client) prometheus.Collector { return &collector{c: c} }

var (
	descJobs      = prometheus.NewDesc("chronoq_jobs", "Jobs by queue and state.", []string{"queue", "state"}, nil)
	descProcessed = prometheus.NewDesc("chronoq_processed_total", "Jobs that succeeded, by queue.", []string{"queue"}, nil)
	descFailed    = prometheus.NewDesc("chronoq_failed_total", "Jobs that failed for good, by queue.", []string{"queue"}, nil)
	descRetried   = prometheus.NewDesc("chronoq_retried_total", "Attempts scheduled for a retry, by queue.", []string{"queue"}, nil)
	descPaused    = prometheus.NewDesc("chronoq_queue_paused", "1 while the queue is paused.", []string{"queue"}, nil)
	descWorkers   = prometheus.NewDesc("chronoq_workers", "Live workers.", nil, nil)
	descTau       = prometheus.NewDesc("chronoq_ranking_kendall_tau", "Kendall tau of predicted vs actual run time over the quality window.", []string{"queue"}, nil)
	descMAPE      = prometheus.NewDesc("chronoq_ranking_mape", "Mean absolute error of predictions relative to the actual run time.", []string{"queue"}, nil)
	descMean      = prometheus.NewDesc("chronoq_task_mean_ms", "Learned mean run time by task.", []string{"queue", "task"}, nil)
)

func (k *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descJobs, descProcessed, descFailed, descRetried, descPaused, descWorkers, descTau, descMAPE, descMean} {
		ch <- d
	}
}

func (k *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	qs, err := k.c.Queues(ctx)
	if err != nil {
		return
	}
	for _, q := range qs {
		c, err := k.c.Counts(ctx, q)
		if err != nil {
			continue
		}
		for state, n := range map[string]int64{"pending": c.Pending, "scheduled": c.Scheduled, "active": c.Active, "failed": c.Failed, "succeeded": c.Succeeded, "canceled": c.Canceled} {
			ch <- prometheus.MustNewConstMetric(descJobs, prometheus.GaugeValue, float64(n), q, state)
		}
		ch <- prometheus.MustNewConstMetric(descProcessed, prometheus.CounterValue, float64(c.Processed), q)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(c.FailedTotal), q)
		ch <- prometheus.MustNewConstMetric(descRetried, prometheus.CounterValue, float64(c.Retried), q)
		paused := 0.0
		if c.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(descPaused, prometheus.GaugeValue, paused, q)
		rep, err := k.c.RankingQuality(ctx, q, 300)
		if err == nil && rep.Config.Mode != ranking.ModeFIFO && rep.Overall.Samples > 1 {
			ch <- prometheus.MustNewConstMetric(descTau, prometheus.GaugeValue, rep.Overall.KendallTau, q)
			ch <- prometheus.MustNewConstMetric(descMAPE, prometheus.GaugeValue, rep.Overall.MAPE, q)
		}
		if stats, err := k.c.RankingStats(ctx, q); err == nil {
			for _, s := range stats {
				if s.Task != "" && s.Count > 0 {
					ch <- prometheus.MustNewConstMetric(descMean, prometheus.GaugeValue, s.MeanMs, q, s.Task)
				}
			}
		}
	}
	if ws, err := k.c.Workers(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(len(ws)))
	}
}
