package queue

import (
	"context"
	"sync"
	"time"

	"github.com/chronoq/chronoq/internal/store"
)

// Group commit of enqueues. A Client called from many goroutines at once would send one
// script call per job; instead, per queue, a call that finds another call's jobs on
// their way to Redis waits for it and joins the next batch, which one of the waiting
// callers sends for all of them. A call alone goes at once: there is no timer and no
// added latency for a lone caller. Each caller keeps its own handles and its own
// error; a batch that fails fails only the calls in it.

// groupBatchTimeout bounds a batch sent for several callers: it is not sent under any
// one caller's context, whose end would fail the others' jobs.
const groupBatchTimeout = 30 * time.Second

// commitGroup is one queue's group commit.
type commitGroup struct {
	mu      sync.Mutex
	busy    bool           // a batch is on its way to Redis
	waiting []*groupMember // calls that will go in the next batch
}

type groupMember struct {
	jobs []store.NewJob
	done chan error          // the batch's outcome, once sent
	lead chan []*groupMember // or: send this batch (it holds this member)
}

// commit stores jobs on queue, in a batch with other callers' if some are on their way.
func (c *Client) commit(ctx context.Context, queue string, jobs []store.NewJob) error {
	c.groupsMu.Lock()
	g := c.groups[queue]
	if g == nil {
		g = &commitGroup{}
		c.groups[queue] = g
	}
	c.groupsMu.Unlock()

	g.mu.Lock()
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		err := c.store.Enqueue(ctx, queue, jobs) // alone: the caller's own context
		g.handOn()
		return err
	}
	m := &groupMember{jobs: jobs, done: make(chan error, 1), lead: make(chan []*groupMember, 1)}
	g.waiting = append(g.waiting, m)
	g.mu.Unlock()
	select {
	case err := <-m.done:
		return err
	case batch := <-m.lead:
		return g.send(ctx, c.store, queue, batch, m)
	case <-ctx.Done():
		g.mu.Lock()
		for i, w := range g.waiting {
			if w == m { // not taken into a batch yet: leave without storing anything
				g.waiting = append(g.waiting[:i], g.waiting[i+1:]...)
				g.mu.Unlock()
				return ctx.Err()
			}
		}
		g.mu.Unlock()
		// already in a batch: its outcome is this call's
		select {
		case err := <-m.done:
			return err
		case batch := <-m.lead:
			return g.send(ctx, c.store, queue, batch, m)
		}
	}
}

// send stores batch (which holds self) for all its members and hands on.
func (g *commitGroup) send(ctx context.Context, s *store.Store, queue string, batch []*groupMember, self *groupMember) error {
	var all []store.NewJob
	for _, m := range batch {
		all = append(all, m.jobs...)
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupBatchTimeout)
	err := s.Enqueue(bctx, queue, all)
	cancel()
	g.handOn()
	for _, m := range batch {
		if m != self {
			m.done <- err
		}
	}
	return err
}

// handOn ends a batch: the calls that waited meanwhile go next, sent by the first of
// them; with none, the group is idle.
func (g *commitGroup) handOn() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiting) == 0 {
		g.busy = false
		return
	}
	batch := g.waiting
	g.waiting = nil
	batch[0].lead <- batch
}
