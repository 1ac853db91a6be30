package store

// The idle side of the hand-off and the wait for work: a worker marks itself idle on
// its queues, blocks until a job is handed to it, a wake-up token or a poke arrives,
// and claims what it was handed. On a Redis Cluster the wait is one BLPOP per queue
// (waitCluster).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/redis/go-redis/v9"
)

// BlockingClient returns a client for one worker's blocking waits and the function
// that ends it. On one server it is a one-connection copy of the client: closing it
// breaks a BLPOP at once. On a Redis Cluster it is a copy with its own connection
// pools: a cluster wait leaves BLPOPs blocked until a token ends them (see
// waitCluster), and in the shared pools they could take the connections that the
// tokens, fetches and acknowledgements need; its end waits for linger (the longest a
// BLPOP of it may still block), so that nothing those BLPOPs pop is cut off.
func (s *Store) BlockingClient(linger time.Duration) (redis.UniversalClient, func()) {
	switch c := s.rdb.(type) {
	case *redis.Client:
		opt := *c.Options()
		opt.PoolSize, opt.MinIdleConns, opt.MaxIdleConns = 1, 0, 1
		opt.ReadTimeout = -1 // the BLPOP timeout bounds the wait
		b := redis.NewClient(&opt)
		return b, func() { _ = b.Close() }
	case *redis.ClusterClient:
		opt := *c.Options()
		opt.PoolSize = max(opt.PoolSize, 64) // per node: a wait's BLPOPs and its stragglers
		opt.MinIdleConns = 0
		b := redis.NewClusterClient(&opt)
		return b, func() { time.AfterFunc(linger, func() { _ = b.Close() }) }
	}
	return s.rdb, func() {}
}

// Wake is what ended a wait for work.
type Wake struct {
	Queue   string   // the queue that has work ("" on timeout)
	HandOff *Fetched // a job handed straight to this (idle) worker, to claim
	// HandedAt is when the job was handed off (Redis' clock): its lease runs from then,
	// for HandOffLease, until a worker claims it.
	HandedAt     time.Time
	HandOffLease time.Duration
	// Failed names, on a Redis Cluster, the queues whose node failed during the wait or
	// did not answer within its NodeDeadline: the wait went on without them.
	Failed map[string]error
}

// WaitFor is what a wait for work listens to (see WaitForWork).
type WaitFor struct {
	Ready   []string // queues whose hand-offs to Worker end the wait
	Wake    []string // queues whose wake-up tokens end the wait
	Worker  string
	Timeout time.Duration
	// IdleUntil, when set, marks Worker idle on the Ready queues until then, with its
	// Lease (see MarkIdle), just before the wait blocks: enqueues may hand it jobs. A
	// failed marking is undone (some queues may have been marked).
	IdleUntil time.Time
	Lease     time.Duration
	// NodeDeadline (on a Redis Cluster) is how long one node may take to mark the
	// worker idle, and how long past Timeout one node's wait may run, before the wait
	// goes on without that node and names its queue in Wake.Failed.
	NodeDeadline time.Duration
}

// ErrNodeSlow is the failure of a call to one queue's node that did not answer within
// its deadline (on a Redis Cluster: see Wake.Failed).
var ErrNodeSlow = errors.New("chronoq: no answer from the queue's Redis node within its deadline")

// Probe asks queue's node for a write that changes nothing: it fails while the node is
// down, and waits while it holds writes (CLIENT PAUSE), as a fetch would.
func (s *Store) Probe(ctx context.Context, queue string) error {
	return s.rdb.PExpire(ctx, s.Keys(queue).prefix+"probe", time.Millisecond).Err()
}

// MarkIdle records worker as idle, until the given time, on queues: an enqueue that
// finds the queue empty may then hand its job straight to the worker (see Claim).
func (s *Store) MarkIdle(ctx context.Context, queues []string, worker string, until time.Time, lease time.Duration) error {
	member := worker + "|" + strconv.FormatInt(lease.Milliseconds(), 10)
	pipe := s.rdb.Pipeline()
	for _, q := range queues {
		pipe.ZAdd(ctx, s.Keys(q).Idle, redis.Z{Score: float64(until.UnixMilli()), Member: member})
	}
	_, err := pipe.Exec(ctx)
	return err
}

// UnmarkIdle undoes MarkIdle.
func (s *Store) UnmarkIdle(ctx context.Context, queues []string, worker string, lease time.Duration) error {
	member := worker + "|" + strconv.FormatInt(lease.Milliseconds(), 10)
	pipe := s.rdb.Pipeline()
	for _, q := range queues {
		pipe.ZRem(ctx, s.Keys(q).Idle, member)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Claim makes worker the owner of the hand-off handOff (the job and the start of the
// lease it was handed with) and starts a full lease of worker's own. It reports false
// when that hand-off no longer waits for a claim (its lease ran out and it was taken
// back): the worker must then not run it, or not record it.
func (s *Store) Claim(ctx context.Context, queue string, handOff Lease, worker string, lease time.Duration) (bool, error) {
	k := s.Keys(queue)
	n, err := scriptClaim.Run(ctx, s.rdb, []string{k.Owners, k.Active}, s.claimArgs(handOff, worker, lease)...).Int()
	return n == 1, err
}

func (s *Store) claimArgs(handOff Lease, worker string, lease time.Duration) []any {
	return []any{handOff.ID, worker, leaseStart(handOff.Start), lease.Milliseconds(), s.leaseClock()}
}

// ClaimAndUnidle is Claim plus UnmarkIdle in one round trip. The claim's own reply
// decides: on a Redis Cluster the idle entries of other queues may be on other nodes,
// and their trouble must not undo a claim made (removing them is best effort; a stale
// entry expires with its idle mark).
func (s *Store) ClaimAndUnidle(ctx context.Context, queue string, handOff Lease, worker string, idle []string, lease time.Duration) (bool, error) {
	member := worker + "|" + strconv.FormatInt(lease.Milliseconds(), 10)
	k := s.Keys(queue)
	pipe := s.rdb.Pipeline()
	claim := scriptClaim.Run(ctx, pipe, []string{k.Owners, k.Active}, s.claimArgs(handOff, worker, lease)...)
	for _, q := range idle {
		pipe.ZRem(ctx, s.Keys(q).Idle, member)
	}
	_, _ = pipe.Exec(ctx)
	n, err := claim.Int()
	if isNoScript(err) {
		if err := s.LoadScripts(ctx); err != nil {
			return false, err
		}
		return s.Claim(ctx, queue, handOff, worker, lease)
	}
	return n == 1, err
}

// IsCluster reports whether the store runs on a Redis Cluster.
func (s *Store) IsCluster() bool {
	_, ok := s.rdb.(*redis.ClusterClient)
	return ok
}

// Poke ends worker's blocking wait.
func (s *Store) Poke(ctx context.Context, worker string) error {
	pipe := s.rdb.Pipeline()
	pipe.RPush(ctx, s.PokeKey(worker), "1")
	pipe.PExpire(ctx, s.PokeKey(worker), time.Minute) // a dead worker's poke goes away
	_, err := pipe.Exec(ctx)
	return err
}

// WaitForWork blocks on rdb (see BlockingClient) until a job is handed off on one of
// w.Ready's queues, a wake-up token arrives on one of w.Wake's queues, the worker is
// poked (Poke), ctx ends, or w.Timeout passes. On one server it is one BLPOP over all
// lists, hand-offs first. On a Redis Cluster, where one BLPOP cannot span slots, see
// waitCluster.
func (s *Store) WaitForWork(ctx context.Context, rdb redis.UniversalClient, w WaitFor) (Wake, error) {
	if _, ok := rdb.(*redis.ClusterClient); ok {
		return s.waitCluster(ctx, rdb, w)
	}
	if !w.IdleUntil.IsZero() {
		if err := s.MarkIdle(ctx, w.Ready, w.Worker, w.IdleUntil, w.Lease); err != nil {
			s.unmarkLater(w.Ready, w.Worker, w.Lease)
			return Wake{}, err
		}
	}
	keys := make([]string, 0, len(w.Ready)+len(w.Wake)+1)
	for _, q := range w.Ready {
		keys = append(keys, s.Keys(q).Ready)
	}
	for _, q := range w.Wake {
		keys = append(keys, s.Keys(q).Wake)
	}
	keys = append(keys, s.PokeKey(w.Worker))
	res, err := blpop(ctx, rdb, w.Timeout, keys...)
	return s.parseWake(res, err, append(w.Ready, w.Wake...))
}

// blpop is BLPOP with its timeout in ms, not whole seconds: go-redis rounds a timeout
// under a second up to one, and a worker waiting for a rate limit's token 300 ms away
// must not sleep a second (Redis has taken a decimal timeout since 6.0; it ends a
// blocking wait on its own tick, 100 ms by default). The one-server blocking client has
// no read deadline (BlockingClient), so nothing else bounds the call.
func blpop(ctx context.Context, rdb redis.UniversalClient, timeout time.Duration, keys ...string) ([]string, error) {
	args := make([]any, 0, len(keys)+2)
	args = append(args, "blpop")
	for _, k := range keys {
		args = append(args, k)
	}
	args = append(args, strconv.FormatFloat(max(timeout, time.Millisecond).Seconds(), 'f', 3, 64))
	return rdb.Do(ctx, args...).StringSlice()
}

// waitCluster waits with one BLPOP per queue (its lists share the queue's slot) plus
// one on the worker's poke list, all at once. The first that brings something ends the
// wait: the others are ended by a token unique to this wait, pushed to a list in each
// one's slot, and collected in the background, where a hand-off or wake-up token one
// of them popped meanwhile goes back to its list, and the tokens are removed.
//
// One node's trouble stays with its queues. Each queue is marked idle (IdleUntil) by
// its own call just before its BLPOP, so a slow node holds no other queue's wait. A
// queue whose marking or BLPOP fails, whose marking takes longer than NodeDeadline, or
// whose BLPOP is still out NodeDeadline after the timeout, is named in Wake.Failed,
// and the wait goes on with the others; it fails only when every one failed. ctx
// ending ends the wait at once (the BLPOPs run on without it, so that nothing they pop
// is lost, and are ended by the token).
func (s *Store) waitCluster(ctx context.Context, rdb redis.UniversalClient, w WaitFor) (Wake, error) {
	queues := make([]string, 0, len(w.Ready)+len(w.Wake))
	for _, q := range append(append([]string{}, w.Ready...), w.Wake...) {
		if !slices.Contains(queues, q) {
			queues = append(queues, q)
		}
	}
	// Each BLPOP is ended by a token on a list of this wait's own. A list shared by the
	// worker's waits would hand a token to the oldest BLPOP blocked on it (Redis serves
	// blocked clients first come, first served), a straggler of an earlier wait whose
	// own token had gone elsewhere: it blocks again, so does the BLPOP the token was
	// for, and from then on every token went one wait astray, leaving each wait's
	// BLPOPs blocked until their timeout, filling the waits' connection pools.
	waitID := job.NewID()
	token := waitToken + waitID
	results := make(chan clusterPop, len(queues)+1)                // each BLPOP's goroutine sends once
	timeout := (w.Timeout + time.Second - 1).Truncate(time.Second) // BLPOP counts whole seconds
	deadline := time.Now().Add(timeout)
	popCtx := context.WithoutCancel(ctx)
	// a queue's marking: 0 under way, 1 done (its BLPOP runs), 2 given up by the wait
	marking := make(map[string]*atomic.Int32, len(queues))
	blpop := func(queue string, mark *atomic.Int32, keys ...string) {
		if mark != nil {
			err := s.MarkIdle(popCtx, []string{queue}, w.Worker, w.IdleUntil, w.Lease)
			if !mark.CompareAndSwap(0, 1) { // too late: the wait went on without it
				if err == nil {
					s.unmarkLater([]string{queue}, w.Worker, w.Lease)
				}
				results <- clusterPop{queue: queue, err: ErrNodeSlow}
				return
			}
			if err != nil {
				s.unmarkLater([]string{queue}, w.Worker, w.Lease)
				results <- clusterPop{queue: queue, err: err}
				return
			}
		}
		for block := timeout; ; {
			res, err := rdb.BLPop(popCtx, block, keys...).Result()
			if err == nil && strings.HasPrefix(res[1], waitToken) && res[1] != token {
				// another wait's token (on a poke list that could not have a list of
				// this wait's own, see pokeCancelKey): not a wake-up. Block again
				// for what is left, rounded up to BLPOP's whole seconds: returning
				// early would leave this queue's hand-offs unheard while the worker
				// still shows as idle
				if left := time.Until(deadline); left > 0 {
					block = (left + time.Second - 1).Truncate(time.Second)
					continue
				}
				err = errRedisNil
			}
			results <- clusterPop{queue, res, err}
			return
		}
	}
	cancelKeys := map[string]string{} // queue ("" for the poke list) -> the list that ends its BLPOP
	for _, q := range queues {
		var keys []string
		mark := false
		if slices.Contains(w.Ready, q) {
			keys = append(keys, s.Keys(q).Ready)
			mark = !w.IdleUntil.IsZero()
		}
		if slices.Contains(w.Wake, q) {
			keys = append(keys, s.Keys(q).Wake)
		}
		ck := s.cancelKey(q, w.Worker, waitID)
		cancelKeys[q] = ck
		keys = append(keys, ck)
		m := new(atomic.Int32) // each goroutine gets its own: the map is the wait's alone
		marking[q] = m
		if !mark {
			m.Store(1)
			m = nil
		}
		go blpop(q, m, keys...)
	}
	pokeKeys := []string{s.PokeKey(w.Worker)}
	cancelKeys[""] = s.pokeCancelKey(w.Worker, waitID)
	if cancelKeys[""] != pokeKeys[0] {
		pokeKeys = append(pokeKeys, cancelKeys[""])
	}
	go blpop("", nil, pokeKeys...)

	// state of each BLPOP ("" the poke list's): blocking until it returns, then gone;
	// failed (marked failing, its result may be yet to come) or stalled
	out := map[string]bool{"": true} // not yet returned
	for _, q := range queues {
		out[q] = true
	}
	var wake Wake
	failed := map[string]bool{}
	fail := func(q string, err error) {
		failed[q] = true
		if q == "" {
			return // the poke list's node: the wait goes on, Stop and pokes reach it late
		}
		if wake.Failed == nil {
			wake.Failed = map[string]error{}
		}
		if _, seen := wake.Failed[q]; !seen {
			wake.Failed[q] = err
		}
	}
	marks := time.NewTimer(max(w.NodeDeadline, time.Millisecond))
	defer marks.Stop()
	// Redis ends a BLPOP at its timeout on its cron tick (up to 100 ms late at hz 10),
	// and each queue's BLPOP starts after its idle mark: a second of grace, so that a
	// healthy queue's timeout is not taken for a stalled node
	stragglers := time.NewTimer(timeout + max(w.NodeDeadline, 0) + time.Second)
	defer stragglers.Stop()
	var got *clusterPop
	var firstErr, ctxErr error
	received := 0
	stalled := false
	live := func() bool { // a BLPOP that may still bring something
		for q := range out {
			if !failed[q] {
				return true
			}
		}
		return false
	}
	for got == nil && !stalled && ctxErr == nil && live() {
		select {
		case p := <-results:
			received++
			delete(out, p.queue)
			switch {
			case failed[p.queue]: // given up on already
			case errors.Is(p.err, errRedisNil): // timed out
			case p.err != nil:
				if firstErr == nil && !errors.Is(p.err, ErrNodeSlow) {
					firstErr = p.err
				}
				fail(p.queue, p.err)
			default:
				got = &p
			}
		case <-marks.C:
			for q := range out {
				if m := marking[q]; m != nil && m.CompareAndSwap(0, 2) {
					fail(q, ErrNodeSlow) // its goroutine reports it once its call returns
				}
			}
		case <-stragglers.C:
			for q := range out {
				if !failed[q] {
					fail(q, ErrNodeSlow)
				}
			}
			stalled = true
		case <-ctx.Done():
			ctxErr = ctx.Err()
			for _, m := range marking {
				m.CompareAndSwap(0, 2) // a mark landing after this wait ended is removed
			}
		}
	}
	if left := len(queues) + 1 - received; left > 0 {
		// end the BLPOPs still blocking, but for those of failed nodes (a token would
		// wait behind them too): what any of them pops later is put back
		var end []string
		for q := range out {
			if !failed[q] {
				end = append(end, cancelKeys[q])
			}
		}
		go s.endClusterWait(results, left, end, token)
	}
	if ctxErr != nil {
		return wake, ctxErr
	}
	if got == nil {
		if len(failed) == len(queues)+1 {
			if firstErr == nil {
				firstErr = ErrNodeSlow
			}
			return wake, firstErr // every node failed: the caller backs off
		}
		return wake, nil // timed out
	}
	woke, err := s.parseWake(got.res, nil, queues)
	woke.Failed = wake.Failed
	return woke, err
}

// unmarkLater removes worker's idle marks on queues in the background, best effort:
// a marking that failed (it may have landed on some) or landed too late.
func (s *Store) unmarkLater(queues []string, worker string, lease time.Duration) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.UnmarkIdle(ctx, queues, worker, lease)
	}()
}

// waitToken starts the tokens that end a cluster wait's other BLPOPs.
const waitToken = "end:"

// clusterPop is what one BLPOP of a cluster wait returned.
type clusterPop struct {
	queue string // "" for the worker's poke list
	res   []string
	err   error
}

// endClusterWait ends the BLPOPs still blocked after a cluster wait returned, puts back
// what they popped meanwhile, and removes the wait's tokens, through the shared client
// (not the waits' own, whose connections the BLPOPs hold). Each step is bounded, so a
// node that hangs costs a goroutine until its timeout, never the worker's next wait.
func (s *Store) endClusterWait(results <-chan clusterPop, n int, cancelKeys []string, token string) {
	bounded := func(f func(ctx context.Context)) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		f(ctx)
	}
	bounded(func(ctx context.Context) {
		pipe := s.rdb.Pipeline()
		for _, k := range cancelKeys {
			pipe.RPush(ctx, k, token)
			pipe.PExpire(ctx, k, time.Minute)
		}
		_, _ = pipe.Exec(ctx)
	})
	for range n {
		p := <-results
		if p.err != nil || strings.HasPrefix(p.res[1], waitToken) {
			continue
		}
		bounded(func(ctx context.Context) {
			switch {
			case p.queue == "":
				// a poke meant for the wait that just ended: it has done its work
			case p.res[0] == s.Keys(p.queue).Ready:
				// a hand-off this wait will not start: back to the head of its list
				_ = s.rdb.LPush(ctx, p.res[0], p.res[1]).Err()
			case p.res[0] == s.Keys(p.queue).Wake:
				_ = s.rdb.RPush(ctx, p.res[0], p.res[1]).Err() // work may be waiting there
			}
		})
	}
	bounded(func(ctx context.Context) {
		pipe := s.rdb.Pipeline()
		for _, k := range cancelKeys {
			pipe.LRem(ctx, k, 0, token) // tokens whose BLPOP had ended before they came
		}
		_, _ = pipe.Exec(ctx)
	})
}

// parseWake reads what a BLPOP returned: the list it came from and its item.
func (s *Store) parseWake(res []string, err error, queues []string) (Wake, error) {
	if errors.Is(err, errRedisNil) {
		return Wake{}, nil
	}
	if err != nil {
		return Wake{}, err
	}
	var w Wake
	for _, q := range queues {
		k := s.Keys(q)
		switch res[0] {
		case k.Wake:
			w.Queue = q
		case k.Ready:
			// an entry that does not parse is a wake-up only: its job, leased to nobody,
			// returns to its lane after the lease
			w, _ = s.ParseHandOff(q, res[1])
			w.Queue = q
		}
		if w.Queue != "" {
			break
		}
	}
	return w, nil
}

// ParseHandOff reads a ready entry of queue: "id|lease start ms|lease ms|lane
// score|lane\nrecord" (see enqueue_one.lua).
func (s *Store) ParseHandOff(queue, entry string) (Wake, error) {
	parts := strings.SplitN(entry, "|", 5)
	if len(parts) == 5 {
		ms, err1 := strconv.ParseInt(parts[1], 10, 64)
		lease, err2 := strconv.ParseInt(parts[2], 10, 64)
		due, err3 := strconv.ParseFloat(parts[3], 64)
		line, body, ok := cutRecord(parts[4])
		lane, _, fair := splitPlace(line)
		// a damaged lease or due time is refused, not read as a negative Duration or a
		// time 292 million years ago
		if ok && err1 == nil && err2 == nil && err3 == nil && lease >= 0 && lease <= math.MaxInt64/int64(time.Millisecond) &&
			math.Abs(due) < 1<<62 {
			at := time.UnixMilli(ms)
			return Wake{Queue: queue, HandedAt: at, HandOffLease: time.Duration(lease) * time.Millisecond,
				HandOff: &Fetched{ID: parts[0], Lane: lane, Record: []byte(body), At: at, Due: time.UnixMilli(int64(due)), Fair: fair}}, nil
		}
	}
	return Wake{}, fmt.Errorf("store: a hand-off entry of queue %q does not parse: %.40q", queue, entry)
}
