package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/redis/go-redis/v9"
)

// Errors of the admin operations; the queue package maps them onto job's.
var (
	ErrNotFound = errors.New("not found")
	ErrActive   = errors.New("job is active")
	ErrEnded    = errors.New("job has ended")
)

// Cancel cancels a pending or scheduled job named by id, or (id "") by schedule key: it
// is kept in the canceled set (how "canceled"). Mode "delete" removes it instead, and
// an ended one too (how "deleted"); mode "stop" also asks a running one to stop (how
// "stopping"). Waiters of a pending or scheduled job are told it was canceled. It
// returns how and the job's id.
func (s *Store) Cancel(ctx context.Context, queue, id, key, mode string) (string, string, error) {
	k := s.Keys(queue)
	switch mode {
	case "cancel", "delete", "stop":
	default:
		return "", "", fmt.Errorf("chronoq: unknown cancel mode %q", mode)
	}
	res, err := s.withLanes(ctx, queue, func(laneKeys, members []string) ([]any, error) {
		keys := append([]string{k.Records, k.Scheduled, k.Index, k.Active, k.Failed, k.Succeeded, k.Attempts, k.Errors,
			k.Stacks, k.Results, k.Timings, k.SchedKeys, k.JobKeys, k.Stops, k.Canceled}, laneKeys...)
		args := make([]any, 0, 9+len(members))
		args = append(args, id, key, k.DoneChannel, mode, s.nowMs(), k.StopChannel, len(members))
		for _, m := range members {
			args = append(args, m)
		}
		args = append(args, s.CanceledAge.Milliseconds(), s.MaxCanceled)
		return scriptCancel.Run(ctx, s.rdb, keys, args...).Slice()
	})
	if err != nil {
		return "", "", err
	}
	how, jid := toStr(res[0]), toStr(res[1])
	switch how {
	case "active":
		return how, jid, ErrActive
	case "finished":
		return how, jid, ErrEnded
	case "notfound":
		return how, jid, ErrNotFound
	}
	return how, jid, nil
}

// RequeueFailed moves failed jobs back to pending with fresh retries: ids, or when
// ids is empty every job that failed by the time failedBy (a job failed again since
// stays failed: it is moved once). It returns how many moved. A keyed job whose key
// names a newer job stays failed. Without ids it pages through the failed set in
// order, one script run per 1000 jobs examined, each starting after the cursor (the
// failure score and id of the last job examined) the previous run returned, so that
// jobs left failed never stop it.
func (s *Store) RequeueFailed(ctx context.Context, queue string, ids []string, failedBy time.Time) (int, error) {
	k := s.Keys(queue)
	ids = distinct(ids) // an id named twice is one job moved once
	total := 0
	afterScore, afterID := "", ""
	for {
		res, err := s.withLanes(ctx, queue, func(laneKeys, members []string) ([]any, error) {
			keys := append([]string{k.Failed, k.Records, k.Index, k.Wake, k.Attempts, k.Timings, k.SchedKeys, k.JobKeys}, laneKeys...)
			args := make([]any, 0, 5+len(members)+len(ids))
			args = append(args, s.nowMs(), len(members))
			for _, m := range members {
				args = append(args, m)
			}
			args = append(args, failedBy.UnixMilli(), afterScore, afterID)
			for _, id := range ids {
				args = append(args, id)
			}
			return scriptRequeueFailed.Run(ctx, s.rdb, keys, args...).Slice()
		})
		if err != nil {
			return total, err
		}
		total += int(toInt(res[1]))
		if len(ids) > 0 || len(res) < 4 {
			return total, nil
		}
		afterScore, afterID = toStr(res[2]), toStr(res[3])
		if afterID == "" {
			return total, nil
		}
	}
}

// Purge deletes up to limit jobs in state ("pending", "scheduled", "failed",
// "succeeded" or "canceled"); callers repeat until it returns 0.
func (s *Store) Purge(ctx context.Context, queue, state string, limit int) (int, error) {
	k := s.Keys(queue)
	set, mode := "", "set"
	switch state {
	case "pending":
		set, mode = k.Scheduled, "pending" // set unused
	case "scheduled":
		set = k.Scheduled
	case "failed":
		set = k.Failed
	case "succeeded":
		set = k.Succeeded
	case "canceled":
		set = k.Canceled
	default:
		return 0, fmt.Errorf("store: cannot purge state %q", state)
	}
	if mode == "pending" {
		// purge.lua empties the lanes it is given: give it those holding jobs now
		members, err := s.rdb.ZRange(ctx, k.Index, 0, 999).Result()
		if err != nil {
			return 0, err
		}
		s.useLanes(queue, members...)
	}
	notify := "0"
	if state == "pending" || state == "scheduled" {
		notify = "1"
	}
	res, err := s.withLanes(ctx, queue, func(laneKeys, members []string) ([]any, error) {
		keys := append([]string{k.Index, k.Records, k.Attempts, k.Errors, k.Stacks, k.Results, k.Timings, set, k.SchedKeys, k.JobKeys}, laneKeys...)
		args := make([]any, 0, 5+len(members))
		args = append(args, mode, limit, len(members))
		for _, m := range members {
			args = append(args, m)
		}
		args = append(args, k.DoneChannel, notify)
		n, err := scriptPurge.Run(ctx, s.rdb, keys, args...).Int()
		return []any{int64(n)}, err
	})
	if err != nil {
		return 0, err
	}
	return int(toInt(res[0])), nil
}

// Pause stops workers from fetching from queue.
func (s *Store) Pause(ctx context.Context, queue string) error {
	return s.rdb.Set(ctx, s.Keys(queue).Paused, s.nowMs(), 0).Err()
}

// Resume lets workers fetch from queue again, and wakes one.
func (s *Store) Resume(ctx context.Context, queue string) error {
	k := s.Keys(queue)
	if err := s.rdb.Del(ctx, k.Paused).Err(); err != nil {
		return err
	}
	return s.rdb.RPush(ctx, k.Wake, "1").Err()
}

// Nudge leaves a wake-up token on queue, so that an idle worker fetches from it.
func (s *Store) Nudge(ctx context.Context, queue string) error {
	return s.rdb.RPush(ctx, s.Keys(queue).Wake, "1").Err()
}

// Trim drops up to 500 succeeded jobs past their retention, 500 failed jobs past
// FailedAge and 500 canceled jobs past CanceledAge (else the oldest beyond MaxSucceeded,
// MaxFailed and MaxCanceled): acknowledgements and failures trim as they go, and
// workers call this on a timer so that an idle queue is trimmed too. It returns how
// many jobs it dropped.
func (s *Store) Trim(ctx context.Context, queue string) (int, error) {
	k := s.Keys(queue)
	return scriptTrim.Run(ctx, s.rdb, []string{k.Succeeded, k.Failed, k.Records, k.Attempts, k.Errors, k.Stacks, k.Results, k.Timings, k.JobKeys, k.Canceled,
		k.Stops, k.Active},
		s.nowMs(), s.MaxSucceeded, s.FailedAge.Milliseconds(), s.MaxFailed, s.CanceledAge.Milliseconds(), s.MaxCanceled).Int()
}

// Paused reports whether queue is paused.
func (s *Store) Paused(ctx context.Context, queue string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.Keys(queue).Paused).Result()
	return n == 1, err
}

// BlockingClient returns a client for blocking waits that Close can interrupt: a
// one-connection copy of a single-node client (closing it breaks a BLPOP at once), or
// the shared client otherwise (the wait then ends at its timeout).
func (s *Store) BlockingClient() (redis.UniversalClient, func()) {
	if c, ok := s.rdb.(*redis.Client); ok {
		opt := *c.Options()
		opt.PoolSize, opt.MinIdleConns, opt.MaxIdleConns = 1, 0, 1
		opt.ReadTimeout = -1 // the BLPOP timeout bounds the wait
		b := redis.NewClient(&opt)
		return b, func() { _ = b.Close() }
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

// ClaimAndUnidle is Claim plus UnmarkIdle in one round trip.
func (s *Store) ClaimAndUnidle(ctx context.Context, queue string, handOff Lease, worker string, idle []string, lease time.Duration) (bool, error) {
	member := worker + "|" + strconv.FormatInt(lease.Milliseconds(), 10)
	k := s.Keys(queue)
	pipe := s.rdb.Pipeline()
	claim := scriptClaim.Run(ctx, pipe, []string{k.Owners, k.Active}, s.claimArgs(handOff, worker, lease)...)
	for _, q := range idle {
		pipe.ZRem(ctx, s.Keys(q).Idle, member)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		if !isNoScript(err) {
			return false, err
		}
		if err := s.LoadScripts(ctx); err != nil {
			return false, err
		}
		return s.Claim(ctx, queue, handOff, worker, lease)
	}
	n, err := claim.Int()
	return n == 1, err
}

// PokeKey is a worker's own wake-up list: the worker pushes to it to end its own
// blocking wait (a slot freed on a queue it had stopped listening to, or Stop).
func (s *Store) PokeKey(worker string) string { return s.ns + ":poke:" + worker }

// cancelKey is a list in queue's slot that ends one of worker's per-queue waits on a
// Redis Cluster (see WaitForWork).
func (s *Store) cancelKey(queue, worker string) string {
	return s.Keys(queue).prefix + "poke:" + worker
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
// ready's queues, a wake-up token arrives on one of wake's queues, worker is poked
// (Poke), or timeout passes. On one server it is one BLPOP over all lists, hand-offs
// first. On a Redis Cluster, where one BLPOP cannot span slots, see waitCluster.
func (s *Store) WaitForWork(ctx context.Context, rdb redis.UniversalClient, ready, wake []string, worker string, timeout time.Duration) (Wake, error) {
	if _, ok := rdb.(*redis.ClusterClient); ok {
		return s.waitCluster(ctx, rdb, ready, wake, worker, timeout)
	}
	keys := make([]string, 0, len(ready)+len(wake)+1)
	for _, q := range ready {
		keys = append(keys, s.Keys(q).Ready)
	}
	for _, q := range wake {
		keys = append(keys, s.Keys(q).Wake)
	}
	keys = append(keys, s.PokeKey(worker))
	res, err := rdb.BLPop(ctx, timeout, keys...).Result()
	return s.parseWake(res, err, append(ready, wake...))
}

// waitCluster waits with one BLPOP per queue (its lists share the queue's slot) plus
// one on the worker's poke list, all at once. The first that brings something ends the
// wait: the others are ended by a token unique to this wait, pushed to a list in each
// one's slot, and collected in the background, where a hand-off or wake-up token one
// of them popped meanwhile goes back to its list, and the tokens are removed. An error
// from one node ends the wait with that error (the caller backs off); timeouts only
// end it when every BLPOP has timed out.
func (s *Store) waitCluster(ctx context.Context, rdb redis.UniversalClient, ready, wake []string, worker string, timeout time.Duration) (Wake, error) {
	queues := make([]string, 0, len(ready)+len(wake))
	for _, q := range append(append([]string{}, ready...), wake...) {
		if !slices.Contains(queues, q) {
			queues = append(queues, q)
		}
	}
	token := waitToken + job.NewID()
	results := make(chan clusterPop, len(queues)+1)
	deadline := time.Now().Add(timeout)
	blpop := func(queue string, keys ...string) {
		for block := timeout; ; {
			res, err := rdb.BLPop(ctx, block, keys...).Result()
			if err == nil && strings.HasPrefix(res[1], waitToken) && res[1] != token {
				// an earlier wait's token, not yet removed: not a wake-up. Block again
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
	var cancelKeys []string
	for _, q := range queues {
		var keys []string
		if slices.Contains(ready, q) {
			keys = append(keys, s.Keys(q).Ready)
		}
		if slices.Contains(wake, q) {
			keys = append(keys, s.Keys(q).Wake)
		}
		ck := s.cancelKey(q, worker)
		cancelKeys = append(cancelKeys, ck)
		keys = append(keys, ck)
		go blpop(q, keys...)
	}
	cancelKeys = append(cancelKeys, s.PokeKey(worker))
	go blpop("", s.PokeKey(worker))
	outstanding := len(queues) + 1
	var got *clusterPop
	for got == nil && outstanding > 0 {
		p := <-results
		outstanding--
		if !errors.Is(p.err, errRedisNil) {
			got = &p // something came, or an error
		}
	}
	if outstanding > 0 {
		go s.endClusterWait(rdb, results, outstanding, cancelKeys, token)
	}
	if got == nil {
		return Wake{}, nil // every BLPOP timed out
	}
	if got.err != nil {
		return Wake{}, got.err
	}
	return s.parseWake(got.res, nil, queues)
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
// what they popped meanwhile, and removes the wait's tokens. Each step is bounded, so a
// node that hangs costs a goroutine until its timeout, never the worker's next wait.
func (s *Store) endClusterWait(rdb redis.UniversalClient, results <-chan clusterPop, n int, cancelKeys []string, token string) {
	bounded := func(f func(ctx context.Context)) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		f(ctx)
	}
	bounded(func(ctx context.Context) {
		pipe := rdb.Pipeline()
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
				_ = rdb.LPush(ctx, p.res[0], p.res[1]).Err()
			case p.res[0] == s.Keys(p.queue).Wake:
				_ = rdb.RPush(ctx, p.res[0], p.res[1]).Err() // work may be waiting there
			}
		})
	}
	bounded(func(ctx context.Context) {
		pipe := rdb.Pipeline()
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
		lane, body, ok := cutRecord(parts[4])
		if ok && err1 == nil && err2 == nil && err3 == nil {
			at := time.UnixMilli(ms)
			return Wake{Queue: queue, HandedAt: at, HandOffLease: time.Duration(lease) * time.Millisecond,
				HandOff: &Fetched{ID: parts[0], Lane: lane, Record: []byte(body), At: at, Due: time.UnixMilli(int64(due))}}, nil
		}
	}
	return Wake{}, fmt.Errorf("store: a hand-off entry of queue %q does not parse: %.40q", queue, entry)
}

// distinct returns ids without repeats, in their first order.
func distinct(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
