package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/chronoq/chronoq/worker/prommetrics"
	"github.com/prometheus/client_golang/prometheus"
)

func cmdRun(ctx context.Context, e *env, args []string) int {
	fc, err := loadConfig(configPath(args))
	if err != nil {
		return e.usageErr("%v", err)
	}
	fs := newFlags(e, "run", "run [--queues ml:1:4,data:2,default] [--concurrency 10 | --autoscale 4,64] [--beat] [--config FILE]")
	var cf connFlags
	cf.addWith(fs, e, fc.Redis, fc.Namespace)
	fs.String("config", "", "YAML file of these settings (env CHRONOQ_CONFIG); flags and env override it")
	queues := fs.String("queues", pick("CHRONOQ_QUEUES", fc.queuesSpec(), "default"),
		"queues as name[:weight[:concurrency]],... (env CHRONOQ_QUEUES)")
	strictDefault, err := envBool("CHRONOQ_STRICT", fc.Strict)
	if err != nil {
		return e.fail(err)
	}
	concDefault, err := envInt("CHRONOQ_CONCURRENCY", orInt(fc.Concurrency, 10), worker.MaxConcurrency)
	if err != nil {
		return e.fail(err)
	}
	beatDefault, err := envBool("CHRONOQ_BEAT", fc.Beat)
	if err != nil {
		return e.fail(err)
	}
	strict := fs.Bool("strict", strictDefault, "take queues in the order given instead of by weight (env CHRONOQ_STRICT)")
	conc := fs.Int("concurrency", concDefault, "jobs run at once (env CHRONOQ_CONCURRENCY)")
	autoscale := fs.String("autoscale", pick("CHRONOQ_AUTOSCALE", fc.Autoscale, ""),
		"vary the jobs run at once between two counts, `min,max` (Celery's max,min order works too), by the rule in docs/limits.md; replaces --concurrency (env CHRONOQ_AUTOSCALE)")
	graceDefault, err := envDuration("CHRONOQ_SHUTDOWN_TIMEOUT", orDur(fc.ShutdownTimeout, 30*time.Second), worker.MaxConfigDuration)
	if err != nil {
		return e.fail(err)
	}
	grace := durationFlag(fs, "shutdown-timeout", graceDefault, "how long running jobs may finish on SIGTERM, a `duration` such as 30s (env CHRONOQ_SHUTDOWN_TIMEOUT)")
	withBeat := fs.Bool("beat", beatDefault, "run a beat in this worker too (safe in every worker; env CHRONOQ_BEAT)")
	beatConfig := fs.String("beat-config", pick("CHRONOQ_BEAT_CONFIG", fc.BeatConfig, ""), "YAML file of beat entries, with --beat (env CHRONOQ_BEAT_CONFIG)")
	metricsAddr := fs.String("metrics-addr", pick("CHRONOQ_METRICS_ADDR", fc.MetricsAddr, ""), "serve Prometheus /metrics on this address, e.g. :9090 (env CHRONOQ_METRICS_ADDR)")
	if _, err := parseArgs(fs, args, 0, 0); err != nil {
		return flagExit(err)
	}
	qs, err := parseQueues(*queues)
	if err != nil {
		return e.usageErr("--queues: %v", err)
	}
	if *conc < 0 || *conc > worker.MaxConcurrency {
		return e.usageErr("--concurrency %d is out of range (0 to %d; 0 means 10)", *conc, worker.MaxConcurrency)
	}
	if *grace < 0 || *grace > worker.MaxConfigDuration {
		return e.usageErr("--shutdown-timeout %s is out of range (0 to %s)", *grace, worker.MaxConfigDuration)
	}
	as, err := parseAutoscale(*autoscale)
	if err != nil {
		return e.usageErr("--autoscale %v", err)
	}
	wcfg := worker.Config{Queues: qs, Strict: *strict, Concurrency: *conc, Autoscale: as, ShutdownTimeout: *grace}
	if as != (worker.Autoscale{}) {
		wcfg.Concurrency = 0 // Autoscale.Max is the ceiling
	}
	if err := wcfg.Validate(); err != nil { // all of it, before connecting
		return e.usageErr("%v", err)
	}
	rdb, err := cf.connect(ctx)
	if err != nil {
		return e.fail(err)
	}
	defer rdb.Close()
	log := cf.logger(e.err)
	c := queue.NewClient(rdb, queue.Config{Namespace: cf.namespace, Logger: log})
	defer c.Close()
	wcfg.Logger = log
	var reg *prometheus.Registry
	if *metricsAddr != "" {
		var obs *prommetrics.Observer
		if reg, obs, err = workerRegistry(c); err != nil {
			return e.fail(err)
		}
		wcfg.Observer = obs
	}
	w, err := worker.New(c, wcfg)
	if err != nil {
		return e.usageErr("%v", err)
	}
	e.register(w)
	if len(w.Tasks()) == 0 {
		return e.usageErr("no task is registered: the shipped binary runs the demo tasks; your own main registers yours (see package cli)")
	}
	if reg != nil {
		stop, err := serveMetrics(*metricsAddr, reg, log)
		if err != nil {
			return e.usageErr("--metrics-addr: %v", err)
		}
		defer stop()
	}
	if *withBeat {
		for _, q := range qs { // so that entries for this worker's queues are accepted
			if err := c.DeclareQueue(ctx, q.Name); err != nil {
				return e.fail(err)
			}
		}
		stopBeat, err := startBeat(ctx, c, *beatConfig, log)
		if err != nil {
			return e.usageErr("--beat: %v", err)
		}
		defer stopBeat()
	}
	if as != (worker.Autoscale{}) {
		log.Info("worker starting", "redis", Redact(cf.url), "queues", *queues, "autoscale", fmt.Sprintf("%d..%d", as.Min, as.Max), "tasks", w.Tasks())
	} else {
		log.Info("worker starting", "redis", Redact(cf.url), "queues", *queues, "concurrency", *conc, "tasks", w.Tasks())
	}
	if err := w.Run(ctx); err != nil {
		return e.fail(err)
	}
	return ExitOK
}

func orInt(v, def int) int {
	if v != 0 {
		return v
	}
	return def
}

func orDur(v, def time.Duration) time.Duration {
	if v != 0 {
		return v
	}
	return def
}
