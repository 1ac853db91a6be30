package beat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

// Config configures a Beat.
type Config struct {
	// Entries defined in Go; Start stores them in Redis (replacing stored entries of the
	// same name), where every replica and the dynamic API see them.
	Entries []Entry
	// MissedAfter: a tick more than this late when the beat looks is missed (every beat
	// was down), and the entry's catch-up policy applies (default 1 minute).
	MissedAfter time.Duration
	// ClaimTTL is ignored.
	//
	// Deprecated: a tick is claimed by moving its entry's progress mark (one field per
	// entry, no TTL) instead of by a key kept for ClaimTTL.
	ClaimTTL time.Duration
	Logger   *slog.Logger
}

// maxKept bounds the missed ticks a catch-up can fire (and CatchUpLimit).
const maxKept = 1000

// Beat fires entries' ticks. Run one in every worker process, or several as their
// own processes: each tick fires once.
type Beat struct {
	c     *queue.Client
	store *store.Store
	cfg   Config
	log   *slog.Logger
}

// New checks the Go-defined entries; the error names every bad one.
func New(c *queue.Client, cfg Config) (*Beat, error) {
	if cfg.MissedAfter <= 0 {
		cfg.MissedAfter = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var errs []error
	seen := map[string]bool{}
	for i := range cfg.Entries {
		e := &cfg.Entries[i]
		if seen[e.Name] {
			errs = append(errs, fmt.Errorf("%w %q: defined twice", ErrInvalidEntry, e.Name))
		}
		seen[e.Name] = true
		if _, err := e.compile(); err != nil {
			errs = append(errs, err)
		}
	}
	return &Beat{c: c, store: clientstore.Of(c), cfg: cfg, log: cfg.Logger}, errors.Join(errs...)
}

// Start stores the Go-defined entries. An entry whose queue is unknown (never enqueued
// to or declared) is refused with an error naming it; the others are stored.
func (b *Beat) Start(ctx context.Context) error {
	var errs []error
	for _, e := range b.cfg.Entries {
		if err := b.Set(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Set adds or replaces an entry at run time; every replica follows from its next look.
func (b *Beat) Set(ctx context.Context, e Entry) error {
	if _, err := e.compile(); err != nil {
		return err
	}
	qs, err := b.store.Queues(ctx)
	if err != nil {
		return err
	}
	known := false
	for _, q := range qs {
		known = known || q == e.Queue
	}
	if !known {
		return fmt.Errorf("%w %q: queue %q does not exist yet (declare it, or enqueue to it once)", ErrInvalidEntry, e.Name, e.Queue)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	// an entry moved to another queue leaves its progress in the old one behind
	var moved []string
	old, err := b.store.BeatEntry(ctx, e.Name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if q := storedQueue(old); q != "" && q != e.Queue {
		moved = append(moved, q)
	}
	_, err = b.store.SetBeatEntry(ctx, e.Queue, e.Name, string(data), moved...)
	return err
}

// storedQueue is the queue of a stored entry, "" when it does not decode.
func storedQueue(data string) string {
	var e struct {
		Queue string `json:"queue"`
	}
	if json.Unmarshal([]byte(data), &e) != nil {
		return ""
	}
	return e.Queue
}

// Delete removes an entry and its progress (its last tick and last job).
func (b *Beat) Delete(ctx context.Context, name string) error {
	old, err := b.store.BeatEntry(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: no beat entry %q", job.ErrNotFound, name)
	}
	if err != nil {
		return err
	}
	queues := []string{storedQueue(old)}
	if queues[0] == "" { // an entry that does not decode: its progress may be in any queue
		if queues, err = b.store.Queues(ctx); err != nil {
			return err
		}
	}
	if err := b.store.DeleteBeatEntry(ctx, name, queues...); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: no beat entry %q", job.ErrNotFound, name)
		}
		return err
	}
	return nil
}

// Enable and Disable switch an entry on and off without forgetting it.
func (b *Beat) Enable(ctx context.Context, name string) error  { return b.setDisabled(ctx, name, false) }
func (b *Beat) Disable(ctx context.Context, name string) error { return b.setDisabled(ctx, name, true) }

func (b *Beat) setDisabled(ctx context.Context, name string, off bool) error {
	entries, bad, err := b.entries(ctx)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name == name {
			e.Disabled = off
			return b.Set(ctx, e.Entry)
		}
	}
	if msg, ok := bad[name]; ok {
		return fmt.Errorf("%w %q: %s", ErrInvalidEntry, name, msg)
	}
	return fmt.Errorf("%w: no beat entry %q", job.ErrNotFound, name)
}

type compiled struct {
	Entry
	sched schedule
}

// entries reads the stored entries; broken ones are reported by name, never fatal.
func (b *Beat) entries(ctx context.Context) ([]compiled, map[string]string, error) {
	raw, err := b.store.BeatEntries(ctx)
	if err != nil {
		return nil, nil, err
	}
	bad := map[string]string{}
	var out []compiled
	for name, data := range raw {
		var e Entry
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			bad[name] = "stored entry does not decode: " + err.Error()
			continue
		}
		s, err := e.compile()
		if err != nil {
			bad[name] = err.Error()
			continue
		}
		out = append(out, compiled{e, s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, bad, nil
}

// Tick fires every tick that is due at the store's clock's now, in tick order, and
// returns the earliest next tick of any enabled entry (zero if none). Safe to run in
// any number of replicas at once.
func (b *Beat) Tick(ctx context.Context) (time.Time, error) {
	now := b.store.Now()
	entries, bad, err := b.entries(ctx)
	if err != nil {
		return time.Time{}, err
	}
	for name, msg := range bad {
		b.log.Error("beat entry skipped", "entry", name, "err", msg)
	}
	byQueue := map[string][]string{}
	tasks := make([]string, 0, len(entries))
	for _, e := range entries {
		byQueue[e.Queue] = append(byQueue[e.Queue], e.Name)
		tasks = append(tasks, e.Task)
	}
	// the options the tasks' workers declared, as for any enqueue by name; the entry's
	// own (its queue always) go after them
	declared, err := b.c.DeclaredOptions(ctx, tasks...)
	if err != nil {
		return time.Time{}, err
	}
	last := map[string]time.Time{}
	for q, names := range byQueue {
		l, _, err := b.store.BeatProgress(ctx, q, names)
		if err != nil {
			return time.Time{}, err
		}
		for n, t := range l {
			last[n] = t
		}
	}
	var next time.Time
	var errs []error
	var ticks []store.BeatTick
	for _, e := range entries {
		if e.Disabled {
			continue
		}
		from, ok := last[e.Name]
		if !ok { // a new entry starts from now: nothing of its past is owed
			t, err := b.tick(ctx, e, declared[e.Task], now, true)
			if err != nil {
				errs = append(errs, err) // one broken entry never stops the others
				continue
			}
			ticks = append(ticks, t)
			from = now
		}
		fire, latest, missed := e.sched.due(from, now, b.cfg.MissedAfter, e.CatchUp, e.CatchUpLimit)
		if missed {
			b.log.Info("beat entry missed ticks", "entry", e.Name, "since", from, "policy", e.CatchUp)
		}
		more, err := b.dueTicks(ctx, e, declared[e.Task], fire, latest)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ticks = append(ticks, more...)
		anchor := from // @every ticks count from the last one, not from now
		if !latest.IsZero() {
			anchor = latest
		}
		if n := e.sched.Next(anchor); !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	if _, err := b.store.FireBeats(ctx, ticks, 0); err != nil {
		errs = append(errs, err)
	}
	return next, errors.Join(errs...)
}

// dueTicks prepares the ticks to fire, in order, then the mark that everything up to
// the latest due tick is done (nothing when no tick is due).
func (b *Beat) dueTicks(ctx context.Context, e compiled, declared []job.Option, fire []time.Time, latest time.Time) ([]store.BeatTick, error) {
	if latest.IsZero() {
		return nil, nil
	}
	var out []store.BeatTick
	for _, t := range fire {
		bt, err := b.tick(ctx, e, declared, t, false)
		if err != nil {
			return nil, err
		}
		out = append(out, bt)
	}
	bt, err := b.tick(ctx, e, declared, latest, true) // the skipped ones are done too
	if err != nil {
		return nil, err
	}
	return append(out, bt), nil
}

// tick prepares one tick of e: its job (unless advance) and where it goes. declared
// are the options the task's workers declared; the entry's own go after them. The job's
// lane and record come from the store as an enqueue's do.
func (b *Beat) tick(ctx context.Context, e compiled, declared []job.Option, at time.Time, advance bool) (store.BeatTick, error) {
	o, err := job.DefaultOptions().Apply(append(slices.Clip(declared), e.options()...)...)
	if err != nil {
		return store.BeatTick{}, fmt.Errorf("beat entry %q: %w", e.Name, err)
	}
	j := &job.Job{ID: job.NewID(), Task: e.Task, Payload: e.Args, Options: o, EnqueuedAt: b.store.Now()}
	nj, err := b.store.PrepareJob(ctx, j)
	if err != nil {
		return store.BeatTick{}, fmt.Errorf("beat entry %q: %w", e.Name, err)
	}
	return store.BeatTick{Queue: e.Queue, Name: e.Name, Tick: at, Advance: advance, OverlapSkip: e.Overlap == OverlapSkip,
		Job: nj}, nil
}

// Run fires ticks until ctx is done: it sleeps until the next tick, or until an entry
// changes (a notice on the beat channel), at most a minute.
func (b *Beat) Run(ctx context.Context) error {
	if err := b.Start(ctx); err != nil {
		b.log.Error("some beat entries were refused", "err", err)
	}
	ps := b.store.Redis().Subscribe(ctx, b.store.BeatChannel())
	defer ps.Close()
	changes := ps.Channel()
	for {
		next, err := b.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			b.log.Error("beat tick", "err", err)
		}
		wait := time.Minute
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(b.store.Now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-changes:
			for drained := false; !drained; { // many changes at once: one look at them all
				select {
				case <-changes:
				default:
					drained = true
				}
			}
		case <-t.C:
		}
		t.Stop()
	}
}

// Status is an entry as the dashboard and CLI show it.
type Status struct {
	Entry
	Next     time.Time
	LastTick time.Time
	LastJob  *job.Job // nil when none or gone
	Error    string   // why the entry cannot run
}

// List reports every stored entry with its next and last run and its last job.
func (b *Beat) List(ctx context.Context) ([]Status, error) {
	entries, bad, err := b.entries(ctx)
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, e := range entries {
		l, jobs, err := b.store.BeatProgress(ctx, e.Queue, []string{e.Name})
		if err != nil {
			return nil, err
		}
		st := Status{Entry: e.Entry, LastTick: l[e.Name]}
		if !e.Disabled {
			from := st.LastTick
			if from.IsZero() {
				from = b.store.Now()
			}
			st.Next = e.sched.upcoming(from, b.store.Now(), b.cfg.MissedAfter)
		}
		if id := jobs[e.Name]; id != "" {
			st.LastJob, _ = b.c.Job(ctx, e.Queue, id)
		}
		out = append(out, st)
	}
	for name, msg := range bad {
		out = append(out, Status{Entry: Entry{Name: name}, Error: msg})
	}
	return out, nil
}
