package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

// jobSpec is a job's task, arguments and options as flags (enqueue) and as JSON fields (enqueue --file).
type jobSpec struct {
	Task     string          `json:"task"`
	Args     json.RawMessage `json:"args"`
	Queue    string          `json:"queue"`
	Priority *int            `json:"priority"`
	Retries  *int            `json:"retries"`
	Timeout  string          `json:"timeout"`
	In       string          `json:"in"`
	At       string          `json:"at"`
	Key      string          `json:"key"`
	FairKey  string          `json:"fair_key"`
}

// request checks the spec and turns it into an enqueue request; the error names the
// field that is wrong.
func (s jobSpec) request() (queue.Request, error) {
	if s.Task == "" {
		return queue.Request{}, badUsage("a task name is required")
	}
	var opts []job.Option
	if s.Queue != "" {
		opts = append(opts, job.Queue(s.Queue))
	}
	if s.Priority != nil {
		opts = append(opts, job.Priority(*s.Priority))
	}
	if s.Retries != nil {
		opts = append(opts, job.MaxRetries(*s.Retries))
	}
	for _, d := range []struct {
		name, v string
		opt     func(time.Duration) job.Option
	}{{"timeout", s.Timeout, job.Timeout}, {"in", s.In, job.In}} {
		if d.v == "" {
			continue
		}
		dur, err := time.ParseDuration(d.v)
		if err != nil {
			return queue.Request{}, badUsage("%s %q is not a duration (e.g. 90s, 10m, 2h)", d.name, d.v)
		}
		opts = append(opts, d.opt(dur))
	}
	if s.In != "" && s.At != "" {
		return queue.Request{}, badUsage("give in or at, not both")
	}
	if s.At != "" {
		t, err := time.Parse(time.RFC3339, s.At)
		if err != nil {
			return queue.Request{}, badUsage("at %q is not an RFC 3339 time (e.g. 2026-12-24T18:00:00Z)", s.At)
		}
		opts = append(opts, job.At(t))
	}
	if s.Key != "" {
		opts = append(opts, job.Key(s.Key))
	}
	if s.FairKey != "" {
		opts = append(opts, job.FairKey(s.FairKey))
	}
	v, err := queue.DecodeJSONArgs(s.Args)
	if err != nil {
		return queue.Request{}, fmt.Errorf("args: %w", err)
	}
	payload, err := job.EncodeArgs(v)
	if err != nil {
		return queue.Request{}, fmt.Errorf("args: %w", err)
	}
	if v == nil {
		payload = nil
	}
	// options are checked here, before anything is enqueued
	o := job.DefaultOptions()
	if _, err := o.Apply(opts...); err != nil {
		return queue.Request{}, err
	}
	if err := job.ValidateTaskName(s.Task); err != nil {
		return queue.Request{}, err
	}
	return queue.Request{Task: s.Task, Payload: payload, Options: opts}, nil
}

func cmdEnqueue(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "enqueue", "enqueue TASK [--args JSON] [--queue Q] [--priority 0-9] [--in 10m | --at TIME] [--key K] [--fair-key K] [--wait 30s]\n       chronoq-worker enqueue --file jobs.jsonl   (one {\"task\":..., \"args\":..., \"queue\":...} per line; - for stdin)")
	var cf connFlags
	cf.add(fs, e)
	var spec jobSpec
	argsJSON := fs.String("args", "", "task arguments as JSON")
	fs.StringVar(&spec.Queue, "queue", "", "queue (default: the one the task's workers declare, else \"default\")")
	prio := fs.Int("priority", job.DefaultPriority, "priority 0-9, 9 runs first (unset: the task's declared one)")
	retries := fs.Int("retries", job.DefaultRetries, "max retries (unset: the task's declared ones)")
	fs.StringVar(&spec.Timeout, "timeout", "", "time limit of one attempt, e.g. 5m")
	fs.StringVar(&spec.In, "in", "", "run after this delay, e.g. 10m")
	fs.StringVar(&spec.At, "at", "", "run at this time (RFC 3339)")
	fs.StringVar(&spec.Key, "key", "", "schedule key: replaces the job waiting under it")
	fs.StringVar(&spec.FairKey, "fair-key", "", "the job's source (a tenant, a customer) for fair share between sources")
	wait := durationFlag(fs, "wait", 0, "wait up to this long (a `duration` such as 30s) for the result and print it")
	file := fs.String("file", "", "enqueue every job of a JSON-lines file (- for stdin)")
	pos, err := parseArgs(fs, args, 0, 1)
	if err != nil {
		return flagExit(err)
	}
	if *file != "" {
		if len(pos) > 0 || *argsJSON != "" {
			return e.usageErr("--file takes the jobs from the file: no TASK or --args beside it")
		}
		return enqueueFile(ctx, e, &cf, *file)
	}
	if len(pos) == 0 {
		return e.usageErr("a task name is required: enqueue TASK [--args JSON]")
	}
	spec.Task, spec.Args = pos[0], json.RawMessage(*argsJSON)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["priority"] {
		spec.Priority = prio
	}
	if set["retries"] {
		spec.Retries = retries
	}
	req, err := spec.request()
	if err != nil {
		return e.fail(err)
	}
	c, closeAll, code := cf.client(ctx, e)
	if code != ExitOK {
		return code
	}
	defer closeAll()
	h, err := c.EnqueueRaw(ctx, req.Task, req.Payload, req.Options...)
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintln(e.out, h.ID)
	if *wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, *wait)
		defer cancel()
		j, err := h.Wait(wctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return e.fail(fmt.Errorf("job %s has not ended within --wait %s", h.ID, *wait))
			}
			return e.fail(err)
		}
		var v any
		_ = j.DecodeResult(&v)
		out, _ := json.Marshal(v)
		fmt.Fprintf(e.out, "%s\n", out)
	}
	return ExitOK
}

// enqueueFile reads every line first, then checks every job as the enqueue will (the
// payload limit, the task's declared options, the horizon of "at"), and only then
// enqueues in batches with progress on stderr: a bad line enqueues nothing and is named
// with its number.
func enqueueFile(ctx context.Context, e *env, cf *connFlags, path string) int {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return e.fail(badUsage("--file: %v", err))
		}
		defer f.Close()
		r = f
	}
	var reqs []queue.Request
	var lines []int // the file's line of each request
	var bad []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		var s jobSpec
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		err := dec.Decode(&s)
		if rest := bytes.TrimSpace(text[min(int(dec.InputOffset()), len(text)):]); err == nil && len(rest) > 0 {
			err = fmt.Errorf("text after the JSON object: %.20q", rest)
		}
		var req queue.Request
		if err == nil {
			req, err = s.request()
		}
		if err != nil {
			bad = append(bad, fmt.Sprintf("line %d: %v", line, err))
			continue
		}
		reqs = append(reqs, req)
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return e.fail(fmt.Errorf("--file %s: %w", path, err))
	}
	if len(bad) > 0 {
		shown := bad[:min(len(bad), 10)]
		more := ""
		if len(bad) > len(shown) {
			more = fmt.Sprintf("\n  ... and %d more", len(bad)-len(shown))
		}
		return e.fail(badUsage("%s: %d bad line(s), nothing enqueued:\n  %s%s", path, len(bad), strings.Join(shown, "\n  "), more))
	}
	c, closeAll, code := cf.client(ctx, e)
	if code != ExitOK {
		return code
	}
	defer closeAll()
	// every job checked before the first batch is sent: EnqueueBatch checks only its own
	if err := c.ValidateBatch(ctx, reqs); err != nil {
		var re *queue.RequestError
		if errors.As(err, &re) {
			return e.fail(badUsage("%s: line %d: %v; nothing enqueued", path, lines[re.Index], re.Err))
		}
		return e.fail(fmt.Errorf("--file %s: checking the jobs: %w", path, err))
	}
	const chunk = 1000
	start := time.Now()
	for i := 0; i < len(reqs); i += chunk {
		batch := reqs[i:min(i+chunk, len(reqs))]
		if _, err := c.EnqueueBatch(ctx, batch); err != nil {
			return e.fail(fmt.Errorf("after %d of %d jobs: %w", i, len(reqs), err))
		}
		progress(e, "enqueued", i+len(batch), len(reqs), start)
	}
	fmt.Fprintf(e.out, "%d\n", len(reqs))
	return ExitOK
}

// progress reports a long operation on stderr: "enqueued 5000/20000 (25%, 12000/s)".
func progress(e *env, verb string, done, total int, start time.Time) {
	rate := float64(done) / max(time.Since(start).Seconds(), 1e-3)
	if total > 0 {
		fmt.Fprintf(e.err, "%s %d/%d (%d%%, %.0f/s)\n", verb, done, total, done*100/total, rate)
		return
	}
	fmt.Fprintf(e.err, "%s %d (%.0f/s)\n", verb, done, rate)
}
