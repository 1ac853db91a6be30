package worker

import (
	"context"
	"fmt"

	"github.com/chronoq/chronoq/job"
)

// Handler runs one job and returns its result (nil for none; any msgpack-able value)
// or an error. Handlers get the job's context: honour its cancellation.
type Handler func(ctx context.Context, j *job.Job) (result any, err error)

// Middleware wraps a Handler (logging, metrics, tracing, recovery policies...).
type Middleware func(Handler) Handler

// Handle registers fn for a typed task. The job's arguments are decoded into an A;
// a payload that does not decode fails the attempt with job.ErrBadPayload.
func Handle[A any](w *Worker, t *job.Task[A], fn func(ctx context.Context, args A) error) {
	w.declare(t.Name(), t.Options())
	w.HandleFunc(t.Name(), func(ctx context.Context, j *job.Job) (any, error) {
		args, err := t.Decode(j.Payload)
		if err != nil {
			return nil, job.SkipRetry(err)
		}
		return nil, fn(ctx, args)
	})
}

// HandleResult registers fn for a typed task whose result is an R; producers read it
// with queue.WaitResult[R].
func HandleResult[A, R any](w *Worker, t *job.Task[A], fn func(ctx context.Context, args A) (R, error)) {
	w.declare(t.Name(), t.Options())
	w.HandleFunc(t.Name(), func(ctx context.Context, j *job.Job) (any, error) {
		args, err := t.Decode(j.Payload)
		if err != nil {
			return nil, job.SkipRetry(err)
		}
		return fn(ctx, args)
	})
}

// declare keeps a typed task's options; Start stores them, so that jobs enqueued by
// name (another service, the CLI, the HTTP API) get them too. Options that do not
// validate panic, as NewTask does on a bad name: a programming error.
func (w *Worker) declare(name string, opts []job.Option) {
	o, err := job.DefaultOptions().Apply(opts...)
	if err != nil {
		panic(fmt.Sprintf("worker: task %q: %v", name, err))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.declared == nil {
		w.declared = map[string]job.Options{}
	}
	w.declared[name] = o
}

// HandleFunc registers h for the task named name. It panics on an invalid name or a
// second registration of the same name, both programming errors found at start-up.
func (w *Worker) HandleFunc(name string, h Handler) {
	if err := job.ValidateTaskName(name); err != nil {
		panic(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.handlers[name]; dup {
		panic(fmt.Sprintf("worker: task %q registered twice", name))
	}
	w.handlers[name] = h
}

// Use adds middleware; the first added is the outermost.
func (w *Worker) Use(mw ...Middleware) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.middleware = append(w.middleware, mw...)
}

// Tasks lists the registered task names.
func (w *Worker) Tasks() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, 0, len(w.handlers))
	for n := range w.handlers {
		names = append(names, n)
	}
	return names
}

// declareLimits stores the fleet-wide limits the typed tasks declare (job.RateLimit,
// job.MaxRunning) in each task's queue; a task declaring none clears an earlier
// declaration. An operator's setting (limits set) wins until cleared. A declaration
// that fails is kept and tried again by the reaper (recountLimits): a Redis blip at
// start must not leave a task's limit unenforced.
func (w *Worker) declareLimits(ctx context.Context, declared map[string]job.Options) {
	for name, o := range declared {
		l := job.Limit{Scope: job.ScopeTask, Task: name, MaxRunning: o.MaxRunning, Rate: o.RateLimit}
		if _, err := w.store.DeclareLimit(ctx, o.Queue, l); err != nil {
			w.log.Warn("cannot store a task's declared limit yet; will retry", "task", name, "queue", o.Queue, "err", err)
			w.mu.Lock()
			if w.undeclared == nil {
				w.undeclared = map[string]job.Options{}
			}
			w.undeclared[name] = o
			w.mu.Unlock()
		}
	}
}
