package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
)

// Request is one job to enqueue by task name.
type Request struct {
	Task    string
	Payload []byte // msgpack; nil for no arguments
	Options []job.Option
	// typed: Options already hold the task's own declaration (a typed enqueue), so
	// the options its workers declared need not be read from Redis
	typed bool
}

// Enqueue enqueues one job of a typed task: its default options, then opts.
func Enqueue[A any](ctx context.Context, c *Client, t *job.Task[A], args A, opts ...job.Option) (*Handle, error) {
	payload, err := t.Encode(args)
	if err != nil {
		return nil, err
	}
	hs, err := c.enqueueBatch(ctx, []Request{{Task: t.Name(), Payload: payload, typed: true,
		Options: append(append([]job.Option(nil), t.Options()...), opts...)}})
	if err != nil {
		return nil, err
	}
	return hs[0], nil
}

// EnqueueMany enqueues one job per element of args, in one round trip per 1000 jobs.
func EnqueueMany[A any](ctx context.Context, c *Client, t *job.Task[A], args []A, opts ...job.Option) ([]*Handle, error) {
	all := append(append([]job.Option(nil), t.Options()...), opts...)
	reqs := make([]Request, len(args))
	for i, a := range args {
		p, err := t.Encode(a)
		if err != nil {
			return nil, fmt.Errorf("args[%d]: %w", i, err)
		}
		reqs[i] = Request{Task: t.Name(), Payload: p, Options: all, typed: true}
	}
	return c.enqueueBatch(ctx, reqs)
}

// EnqueueByName enqueues a job of the task named task with args, any msgpack-able
// value (a struct, a map, a slice, nil) — for services that do not import the
// worker's code (Celery's send_task).
func (c *Client) EnqueueByName(ctx context.Context, task string, args any, opts ...job.Option) (*Handle, error) {
	payload, err := job.EncodeArgs(args)
	if err != nil {
		return nil, err
	}
	return c.EnqueueRaw(ctx, task, payload, opts...)
}

// EnqueueJSON enqueues a job whose arguments are a JSON document; they are stored as
// msgpack, integers as integers.
func (c *Client) EnqueueJSON(ctx context.Context, task string, args []byte, opts ...job.Option) (*Handle, error) {
	v, err := DecodeJSONArgs(args)
	if err != nil {
		return nil, err
	}
	return c.EnqueueByName(ctx, task, v, opts...)
}

// DecodeJSONArgs parses JSON arguments into plain values with integral numbers as
// int64, ready for msgpack. Arrays and objects may nest job.MaxPayloadDepth levels, as
// in a msgpack payload; deeper arguments are refused before they are parsed.
func DecodeJSONArgs(data []byte) (any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	if err := checkJSONDepth(data, job.MaxPayloadDepth); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: args are not valid JSON: %v", job.ErrBadPayload, err)
	}
	// anything but JSON's own space after the document is refused (More does not see a
	// stray ']'; bytes.TrimSpace would pass a '\v', which JSON does not allow)
	if rest := bytes.Trim(data[dec.InputOffset():], " \t\n\r"); len(rest) > 0 {
		return nil, fmt.Errorf("%w: args hold more than one JSON value (%.20q follows the first)", job.ErrBadPayload, rest)
	}
	n, err := numbers(v)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// checkJSONDepth refuses a JSON document whose arrays and objects nest deeper than max
// levels, by counting brackets outside strings: one pass, no parsing, so a document of
// nested brackets is refused at once. (A malformed one is left to the parser.)
func checkJSONDepth(data []byte, max int) error {
	depth, inString, escaped := 0, false, false
	for i, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > max {
				return fmt.Errorf("%w: args nest arrays and objects deeper than %d levels (job.MaxPayloadDepth), at byte %d",
					job.ErrBadPayload, max, i)
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return nil
}

// numbers turns json.Numbers into int64 where integral and float64 otherwise; a
// number past float64's range is refused (msgpack would hold ±Inf, which JSON and most
// task code cannot read back).
func numbers(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%w: the number %.30s in the args is out of range", job.ErrBadPayload, x.String())
		}
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), nil
		}
		return f, nil
	case map[string]any:
		for k, e := range x {
			n, err := numbers(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := numbers(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	}
	return v, nil
}

// EnqueueRaw enqueues a job whose payload is already msgpack.
func (c *Client) EnqueueRaw(ctx context.Context, task string, payload []byte, opts ...job.Option) (*Handle, error) {
	hs, err := c.EnqueueBatch(ctx, []Request{{Task: task, Payload: payload, Options: opts}})
	if err != nil {
		return nil, err
	}
	return hs[0], nil
}

// RequestError is a bad request of a batch (EnqueueBatch, ValidateBatch): its index in
// the slice, and what is wrong with it.
type RequestError struct {
	Index int
	Err   error
}

func (e *RequestError) Error() string { return fmt.Sprintf("request %d: %v", e.Index, e.Err) }

// Unwrap gives the request's error (a *job.OptionError, job.ErrBadPayload...).
func (e *RequestError) Unwrap() error { return e.Err }

// ValidateBatch checks reqs exactly as EnqueueBatch checks them before it sends any:
// the task names, each payload against the client's MaxPayload and job.ValidPayload
// (msgpack, nested at most job.MaxPayloadDepth), the options over those the task's
// workers declared (read from Redis), and each due time against job.MaxHorizon. It
// stores nothing. A bad request is a *RequestError naming its index, whatever the
// batch's size; an error reading the declared options is returned as it is.
//
// A caller that sends a large batch in several calls of EnqueueBatch (the command
// line's enqueue --file) validates all of it first, so a bad request near the end
// enqueues nothing rather than the batches before it.
func (c *Client) ValidateBatch(ctx context.Context, reqs []Request) error {
	_, err := c.prepare(ctx, reqs, c.store.Now())
	return err
}

// prepare checks every request (see ValidateBatch) and makes its job.
func (c *Client) prepare(ctx context.Context, reqs []Request, now time.Time) ([]*job.Job, error) {
	// a typed enqueue carries its task's declaration: only by-name requests read the
	// options the task's workers declared
	var names []string
	for _, r := range reqs {
		if !r.typed {
			names = append(names, r.Task)
		}
	}
	var declared map[string][]job.Option
	if len(names) > 0 {
		var err error
		if declared, err = c.declared(ctx, names); err != nil {
			return nil, err
		}
	}
	out := make([]*job.Job, len(reqs))
	for i, r := range reqs {
		var decl []job.Option
		if !r.typed {
			decl = declared[r.Task]
		}
		j, err := c.prepareOne(r, decl, now)
		if err != nil {
			return nil, &RequestError{Index: i, Err: err}
		}
		out[i] = j
	}
	return out, nil
}

func (c *Client) prepareOne(r Request, declared []job.Option, now time.Time) (*job.Job, error) {
	if err := job.ValidateTaskName(r.Task); err != nil {
		return nil, err
	}
	if len(r.Payload) > c.maxPay {
		return nil, fmt.Errorf("%w: payload of %d bytes is over the %d byte limit", job.ErrBadPayload, len(r.Payload), c.maxPay)
	}
	if err := job.ValidPayload(r.Payload); err != nil {
		return nil, err
	}
	// the options the task's workers declared, then the call's: by name as typed
	o, err := job.DefaultOptions().Apply(append(slices.Clip(declared), r.Options...)...)
	if err != nil {
		return nil, err
	}
	due, err := o.DueAt(now)
	if err != nil {
		return nil, err
	}
	return &job.Job{ID: job.NewID(), Task: r.Task, Payload: r.Payload, Options: o, EnqueuedAt: now, DueAt: due}, nil
}

// EnqueueBatch enqueues many jobs, grouped by queue, in one script run per 1000 jobs
// of a queue and one round trip per queue. Calls made at once from several goroutines
// share those round trips: a call that finds another's jobs on their way to Redis
// joins the next batch (each call still gets its own handles and error). Every request is checked before any is sent
// (as ValidateBatch checks it): one bad request fails the call and stores nothing. Its
// error is a *RequestError naming the request, or, for a batch of one, the request's
// own error.
func (c *Client) EnqueueBatch(ctx context.Context, reqs []Request) ([]*Handle, error) {
	return c.enqueueBatch(ctx, reqs) // a caller's requests are by name: typed is unexported
}

// enqueueBatch is EnqueueBatch for requests that may be typed. Calls from several
// goroutines at once share script calls (see commit).
func (c *Client) enqueueBatch(ctx context.Context, reqs []Request) ([]*Handle, error) {
	now := c.store.Now()
	ready, err := c.prepare(ctx, reqs, now)
	if re := (*RequestError)(nil); len(reqs) == 1 && errors.As(err, &re) {
		return nil, re.Err
	}
	if err != nil {
		return nil, err
	}
	byQueue := map[string][]store.NewJob{}
	var order []string
	handles := make([]*Handle, len(reqs))
	type keyed struct {
		i     int
		queue string
		job   store.NewJob
		opts  job.Options
	}
	var keyedJobs []keyed // stored one by one, after the batch: each may replace a job
	for i, j := range ready {
		o := j.Options
		nj, err := c.store.PrepareJob(ctx, j) // its lane and record, as the beat makes them
		if err != nil {
			return nil, err
		}
		handles[i] = &Handle{ID: j.ID, Queue: o.Queue, Task: j.Task, c: c}
		if o.Key != "" {
			keyedJobs = append(keyedJobs, keyed{i, o.Queue, nj, o})
			continue
		}
		if _, ok := byQueue[o.Queue]; !ok {
			order = append(order, o.Queue)
		}
		byQueue[o.Queue] = append(byQueue[o.Queue], nj)
	}
	for _, q := range order {
		if err := c.registerQueue(ctx, q); err != nil {
			return nil, err
		}
		if err := c.commit(ctx, q, byQueue[q]); err != nil {
			return nil, fmt.Errorf("chronoq: enqueue to %q: %w", q, err)
		}
	}
	for _, k := range keyedJobs {
		if err := c.registerQueue(ctx, k.queue); err != nil {
			return nil, err
		}
		id, kept, err := c.store.EnqueueKeyed(ctx, k.queue, k.job, k.opts.Key, k.opts.KeepExisting)
		if err != nil {
			return nil, fmt.Errorf("chronoq: enqueue to %q under key %q: %w", k.queue, k.opts.Key, err)
		}
		handles[k.i].ID, handles[k.i].Existing = id, kept
	}
	return handles, nil
}
