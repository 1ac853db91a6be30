package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors of the admin operations; the queue package maps them onto job's.
var (
	ErrNotFound = errors.New("not found")
	ErrActive   = errors.New("job is active")
	ErrEnded    = errors.New("job has ended")
)

// Cancel removes a pending or scheduled job named by id, or (id "") by schedule key;
// with del it also removes an ended one. It returns how and the job's id.
func (s *Store) Cancel(ctx context.Context, queue, id, key string, del bool) (string, string, error) {
	k := s.Keys(queue)
	mode := "cancel"
	if del {
		mode = "delete"
	}
	res, err := s.withLanes(ctx, queue, func(laneKeys, members []string) ([]any, error) {
		keys := append([]string{k.Records, k.Scheduled, k.Index, k.Active, k.Failed, k.Succeeded, k.Attempts, k.Errors,
			k.Stacks, k.Results, k.Timings, k.SchedKeys, k.JobKeys}, laneKeys...)
		args := make([]any, 0, 5+len(members))
		args = append(args, id, key, k.DoneChannel, mode, len(members))
		for _, m := range members {
			args = append(args, m)
		}
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

// RequeueFailed moves failed jobs (all of them, up to 1000 a call, when ids is empty)
// back to pending with fresh retries. It returns how many moved.
func (s *Store) RequeueFailed(ctx context.Context, queue string, ids []string) (int, error) {
	k := s.Keys(queue)
	res, err := s.withLanes(ctx, queue, func(laneKeys, members []string) ([]any, error) {
		keys := append([]string{k.Failed, k.Records, k.Index, k.Wake, k.Attempts, k.Timings, k.SchedKeys, k.JobKeys}, laneKeys...)
		args := make([]any, 0, 2+len(members)+len(ids))
		args = append(args, s.nowMs(), len(members))
		for _, m := range members {
			args = append(args, m)
		}
		for _, id := range ids {
			args = append(args, id)
		}
		return scriptRequeueFailed.Run(ctx, s.rdb, keys, args...).Slice()
	})
	if err != nil {
		return 0, err
	}
	return int(toInt(res[1])), nil
}

// Purge deletes up to limit jobs in state ("pending", "scheduled", "failed" or
// "succeeded"); callers repeat until it returns 0.
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
	default:
		return 0, fmt.Errorf("store: cannot purge state %q", state)
	}
	// purge.lua cannot report a lane it was not given: start from a fresh lane list
	if _, err := s.knownLanes(ctx, queue, true); err != nil {
		return 0, err
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
	// HandedAt is when the job was handed off (the enqueuer's clock): its lease runs
	// from then.
	HandedAt time.Time
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

// Claim makes worker the owner of a job handed off to an idle worker. It reports
// false when the job no longer waits for a claim (its lease ran out and it was taken
// back): the worker must then not record it.
func (s *Store) Claim(ctx context.Context, queue, id, worker string) (bool, error) {
	n, err := scriptClaim.Run(ctx, s.rdb, []string{s.Keys(queue).Owners}, id, worker).Int()
	return n == 1, err
}

// ClaimAndUnidle is Claim plus UnmarkIdle in one round trip.
func (s *Store) ClaimAndUnidle(ctx context.Context, queue, id, worker string, idle []string, lease time.Duration) (bool, error) {
	member := worker + "|" + strconv.FormatInt(lease.Milliseconds(), 10)
	pipe := s.rdb.Pipeline()
	claim := scriptClaim.Run(ctx, pipe, []string{s.Keys(queue).Owners}, id, worker)
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
		return s.Claim(ctx, queue, id, worker)
	}
	n, err := claim.Int()
	return n == 1, err
}

// PokeKey is a worker's own wake-up list: the worker pushes to it to end its own
// blocking wait (a slot freed on a queue it had stopped listening to). On a Redis
// Cluster each queue has its own (QueuePokeKey), in the queue's slot.
func (s *Store) PokeKey(worker string) string { return s.ns + ":poke:" + worker }

// QueuePokeKey is worker's wake-up list beside queue's keys (Redis Cluster).
func (s *Store) QueuePokeKey(queue, worker string) string {
	return s.Keys(queue).prefix + "poke:" + worker
}

// IsCluster reports whether the store runs on a Redis Cluster.
func (s *Store) IsCluster() bool {
	_, ok := s.rdb.(*redis.ClusterClient)
	return ok
}

// Poke ends worker's blocking wait; queues are the queues it serves (on a cluster it
// waits beside each of them).
func (s *Store) Poke(ctx context.Context, worker string, queues []string) error {
	keys := []string{s.PokeKey(worker)}
	if s.IsCluster() {
		keys = keys[:0]
		for _, q := range queues {
			keys = append(keys, s.QueuePokeKey(q, worker))
		}
	}
	pipe := s.rdb.Pipeline()
	for _, k := range keys {
		pipe.RPush(ctx, k, "1")
		pipe.PExpire(ctx, k, time.Minute) // a dead worker's poke goes away
	}
	_, err := pipe.Exec(ctx)
	return err
}

// WaitForWork blocks on rdb (see BlockingClient) until a job is handed off on one of
// ready's queues, a wake-up token arrives on one of wake's queues, worker is poked
// (Poke), or timeout passes. On one server it is one BLPOP over all lists, hand-offs
// first. On a Redis Cluster, where one BLPOP cannot span slots, it is one BLPOP per
// queue (each with the queue's own poke list), run at once: the first to return pokes
// the others awake, and a hand-off one of them popped meanwhile goes back to the head
// of its list for the next wait.
func (s *Store) WaitForWork(ctx context.Context, rdb redis.UniversalClient, ready, wake []string, worker string, timeout time.Duration) (Wake, error) {
	if _, ok := rdb.(*redis.ClusterClient); !ok {
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
	queues := make([]string, 0, len(ready)+len(wake))
	for _, q := range append(append([]string{}, ready...), wake...) {
		if !slices.Contains(queues, q) {
			queues = append(queues, q)
		}
	}
	type popped struct {
		k   Keys
		res []string
		err error
	}
	results := make(chan popped, len(queues))
	for _, q := range queues {
		var keys []string
		if slices.Contains(ready, q) {
			keys = append(keys, s.Keys(q).Ready)
		}
		if slices.Contains(wake, q) {
			keys = append(keys, s.Keys(q).Wake)
		}
		keys = append(keys, s.QueuePokeKey(q, worker))
		go func() {
			res, err := rdb.BLPop(ctx, timeout, keys...).Result()
			results <- popped{s.Keys(q), res, err}
		}()
	}
	first := <-results
	all := []popped{first}
	if len(queues) > 1 {
		if errors.Is(first.err, errRedisNil) {
			// a timeout: the others time out at the same moment
		} else {
			_ = s.Poke(context.WithoutCancel(ctx), worker, queues)
		}
		for range queues[1:] {
			all = append(all, <-results)
		}
	}
	// the best of what came: a hand-off, then a wake-up token, then anything
	best := -1
	rank := func(p popped) int {
		switch {
		case p.err != nil:
			return 0
		case p.res[0] == p.k.Ready:
			return 3
		case p.res[0] == p.k.Wake:
			return 2
		}
		return 1
	}
	for i, p := range all {
		if best < 0 || rank(p) > rank(all[best]) {
			best = i
		}
	}
	for i, p := range all {
		if i != best && p.err == nil && p.res[0] == p.k.Ready {
			// a hand-off this wait will not start: back to the head of its list
			_ = rdb.LPush(context.WithoutCancel(ctx), p.res[0], p.res[1]).Err()
		}
	}
	return s.parseWake(all[best].res, all[best].err, queues)
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
			w.Queue = q
			// "id|handed ms|lane score|lane\nrecord"
			parts := strings.SplitN(res[1], "|", 4)
			if len(parts) == 4 {
				if lane, body, ok := cutRecord(parts[3]); ok {
					ms, _ := strconv.ParseInt(parts[1], 10, 64)
					due, _ := strconv.ParseFloat(parts[2], 64)
					w.HandedAt = time.UnixMilli(ms)
					w.HandOff = &Fetched{ID: parts[0], Lane: lane, Record: []byte(body), At: w.HandedAt, Due: time.UnixMilli(int64(due))}
				}
			}
		}
		if w.Queue != "" {
			break
		}
	}
	return w, nil
}
