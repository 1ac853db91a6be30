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
	return MainWith(args, Options{Register: register})
}

// Options configure MainWith.
type Options struct {
	// Register adds the user's tasks to every worker a command starts (nil: the demo
	// tasks).
	Register func(w *worker.Worker)
	// Connect, when set, opens Redis instead of --redis / CHRONOQ_REDIS_URL: for client
	// settings a URL cannot express (a custom TLS config or dialer, credentials from a
	// secret store). Every command uses it; the client is closed when the command ends.
	Connect func(ctx context.Context) (redis.UniversalClient, error)
}

// MainWith is Main with more to configure.
func MainWith(args []string, o Options) int {
	return run(args, o, os.Stdout, os.Stderr)
}

type command struct {
	name, summary string
	run           func(ctx context.Context, e *env, args []string) int
}

type env struct {
	register func(w *worker.Worker)
	connect  func(ctx context.Context) (redis.UniversalClient, error) // nil: from the URL
	out, err io.Writer
	cmd      string // the command running, for messages
}

// fail prints "chronoq-worker CMD: err" and returns the exit code err calls for.
func (e *env) fail(err error) int {
	var printed silentError
	if errors.As(err, &printed) {
		return exitFor(printed.err)
	}
	fmt.Fprintf(e.err, "chronoq-worker %s: %v\n", e.cmd, err)
	return exitFor(err)
}

// usageErr prints a usage message and returns ExitUsage.
func (e *env) usageErr(format string, a ...any) int {
	fmt.Fprintf(e.err, "chronoq-worker %s: %s\n", e.cmd, fmt.Sprintf(format, a...))
	return ExitUsage
}

// exitFor maps an error to the exit code a script can rely on.
func exitFor(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue), errors.Is(err, job.ErrInvalidOption), errors.Is(err, job.ErrBadPayload):
		return ExitUsage
	case errors.Is(err, job.ErrNotFound):
		return ExitNotFound
	}
	return ExitFailure
}

// usageError marks a bad argument found after flag parsing.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func badUsage(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// newFlags makes a command's flag set; --help prints the synopsis, then the flags.
func newFlags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.err)
	fs.Usage = func() {
		fmt.Fprintf(e.err, "usage: chronoq-worker %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags placed anywhere among the positional arguments ("purge
// default --state failed") and checks their number: at least least, at most most
// (-1: any).
func parseArgs(fs *flag.FlagSet, args []string, least, most int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	var err error
	switch {
	case len(pos) < least:
		err = badUsage("missing arguments")
	case most >= 0 && len(pos) > most:
		err = badUsage("unexpected arguments %q", pos[most:])
	}
	if err != nil {
		fmt.Fprintf(fs.Output(), "chronoq-worker %s: %v\n", fs.Name(), err)
		fs.Usage()
		return nil, err
	}
	return pos, nil
}

func commands() []command {
	return []command{
		{"dev", "run everything in one process on an embedded Redis: worker, beat, dashboard, demo jobs", cmdDev},
		{"run", "run a worker (with --beat, a beat beside it)", cmdRun},
		{"beat", "run a beat: recurring jobs from cron specs, safe in any number of replicas", cmdBeat},
		{"dashboard", "serve the dashboard, its JSON API and /metrics (loopback unless credentials are set)", cmdDashboard},
		{"info", "show queues, workers, beat entries and ranking (--watch refreshes)", cmdInfo},
		{"enqueue", "enqueue a job by task name (enqueue TASK --args JSON), or many (--file jobs.jsonl)", cmdEnqueue},
		{"job", "show one job: job ID", cmdJob},
		{"requeue", "requeue failed jobs: requeue ID... | requeue --queue Q --all-failed", cmdRequeue},
		{"cancel", "cancel a job; a running one is asked to stop: cancel ID... (or --key K --queue Q)", cmdCancel},
		{"purge", "delete a queue's jobs in one state: purge QUEUE --state pending|scheduled|failed|succeeded", cmdPurge},
		{"pause", "stop workers taking a queue's jobs: pause QUEUE", cmdPause},
		{"resume", "let workers take a paused queue's jobs again: resume QUEUE", cmdResume},
		{"ranking", "the learned order: ranking show QUEUE | ranking mode QUEUE fifo|shadow|active", cmdRanking},
		{"fair", "fair share by key: " + fairSynopsis, cmdFair},
		{"limits", "fleet-wide limits with their use: " + limitsSynopsis, cmdLimits},
		{"version", "print the version", cmdVersion},
	}
}

func cmdVersion(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "version", "version")
	if _, err := parseArgs(fs, args, 0, 0); err != nil {
		return flagExit(err)
	}
	fmt.Fprintln(e.out, "chronoq-worker", Version)
	return ExitOK
}

func run(args []string, o Options, out, errw io.Writer) int {
	register := o.Register
	if register == nil {
		register = RegisterDemo
	}
	e := &env{register: register, connect: o.Connect, out: out, err: errw}
	if len(args) == 2 && args[0] == "help" { // help COMMAND is COMMAND --help
		args = []string{args[1], "--help"}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(errw)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			e.cmd = c.name
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
	custom    func(ctx context.Context) (redis.UniversalClient, error) // Options.Connect
}

func (c *connFlags) add(fs *flag.FlagSet, e *env) { c.addWith(fs, e, "", "") }

// addWith takes defaults from a config file (below the environment).
func (c *connFlags) addWith(fs *flag.FlagSet, e *env, fileURL, fileNamespace string) {
	c.custom = e.connect
	fs.StringVar(&c.url, "redis", pick("CHRONOQ_REDIS_URL", fileURL, "redis://127.0.0.1:6379/0"), "Redis URL: redis:// or rediss://, with ?master_name=M for Sentinel, redis+cluster:// for Cluster (env CHRONOQ_REDIS_URL)")
	fs.Lookup("redis").DefValue = Redact(c.url) // --help must not show a password
	fs.StringVar(&c.namespace, "namespace", pick("CHRONOQ_NAMESPACE", fileNamespace, "chronoq"), "key namespace (env CHRONOQ_NAMESPACE)")
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
// its password redacted. Three forms:
//
//	redis://[:password@]host:port/db            one server (rediss:// for TLS)
//	redis://host:port/db?master_name=mymaster&addr=host2:port   Sentinel (the hosts are sentinels)
//	redis+cluster://host:port?addr=host2:port                    Redis Cluster
func (c *connFlags) connect(ctx context.Context) (redis.UniversalClient, error) {
	redis.SetLogger(redisLog{verbose: c.verbose})
	if c.custom != nil {
		rdb, err := c.custom(ctx)
		if err != nil {
			return nil, fmt.Errorf("cannot reach Redis: %w", err)
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err := rdb.Ping(pctx).Err(); err != nil {
			_ = rdb.Close()
			return nil, fmt.Errorf("cannot reach Redis (Options.Connect): %v", err)
		}
		return rdb, nil
	}
	rdb, err := openURL(c.url)
	if err != nil {
		// the parser's message quotes the URL: show it redacted
		msg := strings.ReplaceAll(redactErr(err, c.url), c.url, Redact(c.url))
		if _, perr := url.Parse(c.url); perr != nil {
			msg = "not a URL (passwords with %, # or / must be percent-encoded)"
		}
		return nil, badUsage("bad --redis URL %s: %s", Redact(c.url), msg)
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("cannot reach Redis at %s: %v", Redact(c.url), redactErr(err, c.url))
	}
	return rdb, nil
}

func openURL(raw string) (redis.UniversalClient, error) {
	if rest, ok := strings.CutPrefix(raw, "redis+cluster://"); ok {
		return clusterClient("redis://" + rest)
	}
	if rest, ok := strings.CutPrefix(raw, "rediss+cluster://"); ok {
		return clusterClient("rediss://" + rest)
	}
	if u, err := url.Parse(raw); err == nil && u.Query().Has("master_name") {
		opt, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, err
		}
		if opt.DialTimeout == 0 {
			opt.DialTimeout = 3 * time.Second
		}
		return redis.NewFailoverClient(opt), nil
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = 3 * time.Second
	}
	return redis.NewClient(opt), nil
}

func clusterClient(raw string) (redis.UniversalClient, error) {
	opt, err := redis.ParseClusterURL(raw)
	if err != nil {
		return nil, err
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = 3 * time.Second
	}
	return redis.NewClusterClient(opt), nil
}

// redactErr keeps a password out of an error that quotes the URL.
func redactErr(err error, raw string) string {
	msg := err.Error()
	for _, p := range secrets(raw) {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return msg
}

// Redact hides the passwords of a Redis URL: the user part's and the password and
// sentinel_password query parameters (Sentinel URLs).
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return maskUserinfo(raw)
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	changed := false
	for _, k := range passwordParams {
		if q.Has(k) {
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

var passwordParams = []string{"password", "sentinel_password"}

// maskUserinfo hides everything between "://" and the last "@" of a URL that does not
// parse (a password with a stray % or # in it, say), and any query.
func maskUserinfo(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i] + "?xxxxx"
	}
	start := strings.Index(raw, "://")
	at := strings.LastIndexByte(raw, '@')
	if start < 0 || at < start {
		return raw
	}
	return raw[:start+3] + "xxxxx" + raw[at:]
}

// secrets are the passwords a Redis URL holds.
func secrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p)
		}
	}
	for _, k := range passwordParams {
		if p := u.Query().Get(k); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// redisLog routes go-redis's own messages (pool dial failures, reconnects) to stderr
// with -v only: without it they would repeat what the command's one message says.
type redisLog struct{ verbose bool }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	if l.verbose {
		fmt.Fprintf(os.Stderr, "redis: "+format+"\n", v...)
	}
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
		for i, f := range []struct {
			name string
			dst  *int
			max  int
		}{{"weight", &q.Weight, worker.MaxWeight}, {"concurrency", &q.Concurrency, worker.MaxConcurrency}} {
			if len(fields) > i+1 {
				n, err := strconv.Atoi(fields[i+1])
				if errors.Is(err, strconv.ErrRange) || err == nil && n > f.max {
					return nil, fmt.Errorf("queue %q: %s %s is out of range (0 to %d)", part, f.name, fields[i+1], f.max)
				}
				if err != nil || n < 0 {
					return nil, fmt.Errorf("queue %q: %q is not a non-negative number", part, fields[i+1])
				}
				*f.dst = n
			}
		}
		out = append(out, q)
	}
	if len(out) == 0 {
		return nil, errors.New("no queue given")
	}
	// names and repeats, as the worker will check them
	if err := (worker.Config{Queues: out}).Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// parseAutoscale reads --autoscale: two slot counts, "min,max", or "max,min" as
// Celery writes them; the smaller is Min either way. "" is off.
func parseAutoscale(s string) (worker.Autoscale, error) {
	if strings.TrimSpace(s) == "" {
		return worker.Autoscale{}, nil
	}
	a, b, ok := strings.Cut(s, ",")
	if !ok || strings.Contains(b, ",") {
		return worker.Autoscale{}, fmt.Errorf("%q: want two slot counts, min,max (or Celery's max,min), e.g. 4,64", s)
	}
	var n [2]int
	for i, f := range []string{a, b} {
		f = strings.TrimSpace(f)
		v, err := strconv.Atoi(f)
		if errors.Is(err, strconv.ErrRange) {
			return worker.Autoscale{}, fmt.Errorf("%q: %s is out of range (1 to %d)", s, f, worker.MaxConcurrency)
		}
		if err != nil {
			return worker.Autoscale{}, fmt.Errorf("%q: %q is not a whole number of slots", s, f)
		}
		if v < 1 {
			return worker.Autoscale{}, fmt.Errorf("%q: %d is below 1: a worker has at least one slot", s, v)
		}
		n[i] = v
	}
	as := worker.Autoscale{Min: min(n[0], n[1]), Max: max(n[0], n[1])}
	if err := (worker.Config{Autoscale: as}).Validate(); err != nil {
		return worker.Autoscale{}, fmt.Errorf("%q: %w", s, err)
	}
	return as, nil
}

// envInt reads a number from 0 to max from the environment, def when unset; a value
// that is not such a number is an error naming the variable, never silently ignored.
func envInt(key string, def, max int) (int, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if errors.Is(err, strconv.ErrRange) || err == nil && (n < 0 || n > max) {
		return 0, badUsage("%s=%s is out of range (0 to %d)", key, v, max)
	}
	if err != nil {
		return 0, badUsage("%s=%q is not a number", key, v)
	}
	return n, nil
}

// envDuration reads a duration from 0 to max from the environment, def when unset; a
// bare number ("30") is an error, never taken as nanoseconds or as seconds.
func envDuration(key string, def, max time.Duration) (time.Duration, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, badUsage("%s=%q is not a duration; write it with its unit, e.g. \"30s\" or \"2m\"", key, v)
	}
	if d < 0 || d > max {
		return 0, badUsage("%s=%s is out of range (0 to %s)", key, v, max)
	}
	return d, nil
}

// durationValue is a duration flag whose error says how to write one (the flag
// package's own says only "parse error").
type durationValue time.Duration

func (d *durationValue) String() string { return (*time.Duration)(d).String() }

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New(`not a duration; write it with its unit, e.g. "30s" or "2m"`)
	}
	*d = durationValue(v)
	return nil
}

func durationFlag(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	d := def
	fs.Var((*durationValue)(&d), name, usage)
	return &d
}

// envBool reads a boolean (true, false, 1, 0) from the environment, def when unset.
func envBool(key string, def bool) (bool, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badUsage("%s=%q is not true or false", key, v)
	}
	return b, nil
}

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	return ExitUsage
}

// client connects to Redis and opens a queue client; on failure it has printed why
// and returns the exit code.
func (c *connFlags) client(ctx context.Context, e *env) (*queue.Client, func(), int) {
	rdb, err := c.connect(ctx)
	if err != nil {
		return nil, nil, e.fail(err)
	}
	qc := queue.NewClient(rdb, queue.Config{Namespace: c.namespace, Logger: c.logger(e.err)})
	return qc, func() { _ = qc.Close(); _ = rdb.Close() }, ExitOK
}
