package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Version is the chronoq version the binary reports.
const Version = "0.1.0-dev"

// Exit codes a script can rely on.
const (
	ExitOK       = 0
	ExitFailure  = 1 // the command ran and failed (e.g. a job failed, Redis unreachable)
	ExitUsage    = 2 // bad subcommand, flag or argument
	ExitNotFound = 3 // the job or queue named does not exist
)

// Main runs the command line with args (without the program name) and returns the
// exit code. register adds the user's tasks to every worker the command starts; nil
// means the demo tasks.
func Main(args []string, register func(w *worker.Worker)) int {
	return run(args, register, os.Stdout, os.Stderr)
}

type command struct {
	name, summary string
	run           func(ctx context.Context, e *env, args []string) int
}

type env struct {
	register func(w *worker.Worker)
	out, err io.Writer
}

func commands() []command {
	return []command{
		{"dev", "run everything in one process on an embedded Redis, with demo jobs", cmdDev},
		{"run", "run a worker (with --beat, a beat beside it)", cmdRun},
		{"beat", "run a beat: recurring jobs from cron specs, safe in any number of replicas", cmdBeat},
		{"dashboard", "serve the dashboard's JSON API and /metrics (loopback unless credentials are set)", cmdDashboard},
		{"enqueue", "enqueue a job by task name: enqueue TASK [--args JSON] [--queue Q] ...", cmdEnqueue},
		{"version", "print the version", func(ctx context.Context, e *env, args []string) int {
			fmt.Fprintln(e.out, "chronoq-worker", Version)
			return ExitOK
		}},
	}
}

func run(args []string, register func(w *worker.Worker), out, errw io.Writer) int {
	if register == nil {
		register = RegisterDemo
	}
	e := &env{register: register, out: out, err: errw}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(errw)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(context.Background(), e, args[1:])
		}
	}
	fmt.Fprintf(errw, "chronoq-worker: unknown command %q\n\n", args[0])
	usage(errw)
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: chronoq-worker COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'chronoq-worker COMMAND --help' for a command's flags.")
}

// connFlags are the flags every command that talks to Redis takes.
type connFlags struct {
	url       string
	namespace string
	verbose   bool
}

func (c *connFlags) add(fs *flag.FlagSet) {
	c.url = envOr("CHRONOQ_REDIS_URL", "redis://127.0.0.1:6379/0")
	fs.StringVar(&c.url, "redis", c.url, "Redis URL (env CHRONOQ_REDIS_URL)")
	fs.StringVar(&c.namespace, "namespace", envOr("CHRONOQ_NAMESPACE", "chronoq"), "key namespace (env CHRONOQ_NAMESPACE)")
	fs.BoolVar(&c.verbose, "v", false, "debug logging")
}

func (c *connFlags) logger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// connect opens Redis and checks it answers within 3s; the error names the URL with
// its password redacted.
func (c *connFlags) connect(ctx context.Context) (*redis.Client, error) {
	opt, err := redis.ParseURL(c.url)
	if err != nil {
		return nil, fmt.Errorf("bad --redis URL %s: %v", Redact(c.url), err)
	}
	opt.DialTimeout = 3 * time.Second
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("cannot reach Redis at %s: %v", Redact(c.url), err)
	}
	return rdb, nil
}

// Redact hides the password of a Redis URL.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// parseQueues reads "ml:3,data:2,default" (name[:weight[:concurrency]]).
func parseQueues(s string) ([]worker.QueueConfig, error) {
	var out []worker.QueueConfig
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		fields := strings.Split(part, ":")
		q := worker.QueueConfig{Name: fields[0]}
		if len(fields) > 3 {
			return nil, fmt.Errorf("queue %q: use name[:weight[:concurrency]]", part)
		}
		for i, dst := range []*int{&q.Weight, &q.Concurrency} {
			if len(fields) > i+1 {
				n, err := strconv.Atoi(fields[i+1])
				if err != nil || n < 0 {
					return nil, fmt.Errorf("queue %q: %q is not a non-negative number", part, fields[i+1])
				}
				*dst = n
			}
		}
		out = append(out, q)
	}
	if len(out) == 0 {
		return nil, errors.New("no queue given")
	}
	return out, nil
}

func cmdRun(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(e.err)
	var cf connFlags
	cf.add(fs)
	queues := fs.String("queues", envOr("CHRONOQ_QUEUES", "default"), "queues as name[:weight[:concurrency]],... (env CHRONOQ_QUEUES)")
	strict := fs.Bool("strict", false, "take queues in the order given instead of by weight")
	conc := fs.Int("concurrency", envInt("CHRONOQ_CONCURRENCY", 10), "jobs run at once (env CHRONOQ_CONCURRENCY)")
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "how long running jobs may finish on SIGTERM")
	withBeat := fs.Bool("beat", false, "run a beat in this worker too (safe in every worker)")
	beatConfig := fs.String("beat-config", envOr("CHRONOQ_BEAT_CONFIG", ""), "YAML file of beat entries, with --beat")
	metricsAddr := fs.String("metrics-addr", envOr("CHRONOQ_METRICS_ADDR", ""), "serve Prometheus /metrics on this address, e.g. :9090 (env CHRONOQ_METRICS_ADDR)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	qs, err := parseQueues(*queues)
	if err != nil {
		fmt.Fprintln(e.err, "chronoq-worker run: --queues:", err)
		return ExitUsage
	}
	rdb, err := cf.connect(ctx)
	if err != nil {
		fmt.Fprintln(e.err, "chronoq-worker run:", err)
		return ExitFailure
	}
	defer rdb.Close()
	log := cf.logger(e.err)
	c := queue.NewClient(rdb, queue.Config{Namespace: cf.namespace, Logger: log})
	defer c.Close()
	var reg *prometheus.Registry
	if *metricsAddr != "" {
		reg = workerRegistry(c)
	}
	w, err := worker.New(c, worker.Config{Queues: qs, Strict: *strict, Concurrency: *conc, ShutdownTimeout: *grace, Logger: log, Metrics: registerer(reg)})
	if err != nil {
		fmt.Fprintln(e.err, "chronoq-worker run:", err)
		return ExitUsage
	}
	e.register(w)
	if reg != nil {
		stop, err := serveMetrics(*metricsAddr, reg, log)
		if err != nil {
			fmt.Fprintln(e.err, "chronoq-worker run: --metrics-addr:", err)
			return ExitUsage
		}
		defer stop()
	}
	if *withBeat {
		for _, q := range qs { // so that entries for this worker's queues are accepted
			if err := c.DeclareQueue(ctx, q.Name); err != nil {
				fmt.Fprintln(e.err, "chronoq-worker run:", err)
				return ExitFailure
			}
		}
		stopBeat, err := startBeat(ctx, c, *beatConfig, log)
		if err != nil {
			fmt.Fprintln(e.err, "chronoq-worker run: --beat:", err)
			return ExitUsage
		}
		defer stopBeat()
	}
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(e.err, "chronoq-worker run:", err)
		return ExitFailure
	}
	return ExitOK
}

func cmdEnqueue(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("enqueue", flag.ContinueOnError)
	fs.SetOutput(e.err)
	var cf connFlags
	cf.add(fs)
	argsJSON := fs.String("args", "", "task arguments as JSON")
	q := fs.String("queue", job.DefaultQueue, "queue")
	prio := fs.Int("priority", job.DefaultPriority, "priority 0-9 (9 runs first)")
	retries := fs.Int("retries", job.DefaultRetries, "max retries")
	in := fs.Duration("in", 0, "run after this delay")
	at := fs.String("at", "", "run at this time (RFC 3339)")
	wait := fs.Duration("wait", 0, "wait up to this long for the result and print it")
	task, rest := "", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		task, rest = args[0], args[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return flagExit(err)
	}
	if task == "" && fs.NArg() > 0 {
		task = fs.Arg(0)
	}
	if task == "" {
		fmt.Fprintln(e.err, "chronoq-worker enqueue: a task name is required: enqueue TASK [--args JSON]")
		return ExitUsage
	}
	opts := []job.Option{job.Queue(*q), job.Priority(*prio), job.MaxRetries(*retries)}
	if *in > 0 {
		opts = append(opts, job.In(*in))
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			fmt.Fprintf(e.err, "chronoq-worker enqueue: --at %q is not an RFC 3339 time (e.g. 2026-12-24T18:00:00Z)\n", *at)
			return ExitUsage
		}
		opts = append(opts, job.At(t))
	}
	if _, err := queue.DecodeJSONArgs([]byte(*argsJSON)); err != nil {
		fmt.Fprintln(e.err, "chronoq-worker enqueue: --args:", err)
		return ExitUsage
	}
	rdb, err := cf.connect(ctx)
	if err != nil {
		fmt.Fprintln(e.err, "chronoq-worker enqueue:", err)
		return ExitFailure
	}
	defer rdb.Close()
	c := queue.NewClient(rdb, queue.Config{Namespace: cf.namespace, Logger: cf.logger(e.err)})
	defer c.Close()
	h, err := c.EnqueueJSON(ctx, task, []byte(*argsJSON), opts...)
	if err != nil {
		fmt.Fprintln(e.err, "chronoq-worker enqueue:", err)
		if errors.Is(err, job.ErrInvalidOption) {
			return ExitUsage
		}
		return ExitFailure
	}
	fmt.Fprintln(e.out, h.ID)
	if *wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, *wait)
		defer cancel()
		j, err := h.Wait(wctx)
		if err != nil {
			fmt.Fprintln(e.err, "chronoq-worker enqueue:", err)
			return ExitFailure
		}
		var v any
		_ = j.DecodeResult(&v)
		fmt.Fprintf(e.out, "%v\n", v)
	}
	return ExitOK
}

func envInt(key string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return n
	}
	return def
}

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	return ExitUsage
}
