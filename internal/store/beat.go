package store

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// BeatChannel is where entry changes are announced to every beat replica.
func (s *Store) BeatChannel() string { return s.ns + ":beat:ev" }

// BeatEntries reads every stored entry (name -> JSON).
func (s *Store) BeatEntries(ctx context.Context) (map[string]string, error) {
	return s.rdb.HGetAll(ctx, beatEntriesKey(s.ns)).Result()
}

// BeatEntry reads one stored entry (JSON); ErrNotFound when there is none.
func (s *Store) BeatEntry(ctx context.Context, name string) (string, error) {
	data, err := s.rdb.HGet(ctx, beatEntriesKey(s.ns), name).Result()
	if errors.Is(err, errRedisNil) {
		return "", ErrNotFound
	}
	return data, err
}

// SetBeatEntry stores an entry of queue and tells every replica, unless it is stored
// already exactly so (a replica restarting with the same entries changes nothing and
// wakes nobody). A new or changed entry starts from now: its progress mark moves up to
// now, so no tick before the change is owed, enabling an entry or changing its spec
// never replays ticks as catch-up, and a new entry's first tick does not depend on which
// replica sees it first. The mark never moves back (a change stored by a process whose
// clock lags would otherwise fire a fired tick again). moved names queues the entry was
// in before: its progress there is removed, and its mark there carried over.
func (s *Store) SetBeatEntry(ctx context.Context, queue, name, data string, moved ...string) (bool, error) {
	old, err := s.rdb.HGet(ctx, beatEntriesKey(s.ns), name).Result()
	if err != nil && !errors.Is(err, errRedisNil) {
		return false, err
	}
	if old == data {
		return false, nil
	}
	start := s.now()
	for _, q := range moved {
		if q == queue {
			continue
		}
		last, _, err := s.BeatProgress(ctx, q, []string{name})
		if err != nil {
			return false, err
		}
		if t, ok := last[name]; ok && t.After(start) {
			start = t
		}
	}
	if _, err := s.FireBeats(ctx, []BeatTick{{Queue: queue, Name: name, Tick: start, Advance: true}}, 0); err != nil {
		return false, err
	}
	pipe := s.rdb.Pipeline()
	for _, q := range moved {
		if q != queue {
			pipe.HDel(ctx, beatKey(s.Keys(q)), name+"|last", name+"|job")
		}
	}
	pipe.HSet(ctx, beatEntriesKey(s.ns), name, data)
	pipe.Publish(ctx, s.BeatChannel(), name)
	_, err = pipe.Exec(ctx)
	return true, err
}

// DeleteBeatEntry removes an entry and its progress in queues (the entry's queue, or
// every queue when it is not known); ErrNotFound when there is no such entry.
func (s *Store) DeleteBeatEntry(ctx context.Context, name string, queues ...string) error {
	pipe := s.rdb.Pipeline()
	del := pipe.HDel(ctx, beatEntriesKey(s.ns), name)
	for _, q := range queues {
		pipe.HDel(ctx, beatKey(s.Keys(q)), name+"|last", name+"|job")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	if del.Val() == 0 {
		return ErrNotFound
	}
	return s.rdb.Publish(ctx, s.BeatChannel(), name).Err()
}

// BeatFire is the outcome of firing a tick.
type BeatFire struct {
	Outcome string // ok, skipped, done (this tick or a later one was done), advanced
	JobID   string // the job enqueued (ok) or still waiting (skipped)
}

// BeatTick is one tick to fire (or, with Advance, only to mark done).
type BeatTick struct {
	Queue, Name string
	Tick        time.Time
	Job         NewJob
	OverlapSkip bool
	Advance     bool
}

// FireBeats fires ticks in order, pipelined beatFiresPerRoundTrip to a round trip; each tick is one
// script run (claim and enqueue together), and an entry's ticks go oldest first: a tick
// is claimed by moving the entry's progress mark up to it, so an earlier tick sent after
// it is done already. It returns each tick's outcome. The duration is ignored: it was
// the lifetime of per-tick claim keys, which the progress mark replaced.
func (s *Store) FireBeats(ctx context.Context, ticks []BeatTick, _ time.Duration) ([]BeatFire, error) {
	out := make([]BeatFire, 0, len(ticks))
	for start := 0; start < len(ticks); start += beatFiresPerRoundTrip {
		batch := ticks[start:min(start+beatFiresPerRoundTrip, len(ticks))]
		res, err := s.fireBatch(ctx, batch)
		if isNoScript(err) { // pipelined EVALSHA cannot fall back to EVAL: load, send again
			if err = s.LoadScripts(ctx); err == nil {
				res, err = s.fireBatch(ctx, batch)
			}
		}
		if err != nil {
			return out, err
		}
		out = append(out, res...)
	}
	return out, nil
}

func (s *Store) fireBatch(ctx context.Context, ticks []BeatTick) ([]BeatFire, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]interface{ Slice() ([]any, error) }, len(ticks))
	now := s.nowMs()
	for i, t := range ticks {
		k := s.Keys(t.Queue)
		skip, adv := "", ""
		if t.OverlapSkip {
			skip = "skip"
		}
		if t.Advance {
			adv = "advance"
		}
		keys := []string{beatKey(k), k.Records, k.Index, k.Wake, k.Lane(t.Job.Lane), k.Scheduled, k.Active}
		cmds[i] = scriptBeatFire.EvalSha(ctx, pipe, keys, now, t.Tick.UnixMilli(), t.Name,
			t.Job.ID, t.Job.Lane, t.Job.Record, skip, adv)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]BeatFire, len(ticks))
	for i, c := range cmds {
		res, err := c.Slice()
		if err != nil {
			return nil, err
		}
		out[i].Outcome = toStr(res[0])
		if len(res) > 1 {
			out[i].JobID = toStr(res[1])
		}
	}
	return out, nil
}

// BeatProgress reads, for entries of one queue, the last tick done and the last job.
func (s *Store) BeatProgress(ctx context.Context, queue string, names []string) (last map[string]time.Time, jobs map[string]string, err error) {
	last, jobs = map[string]time.Time{}, map[string]string{}
	if len(names) == 0 {
		return last, jobs, nil
	}
	fields := make([]string, 0, 2*len(names))
	for _, n := range names {
		fields = append(fields, n+"|last", n+"|job")
	}
	vals, err := s.rdb.HMGet(ctx, beatKey(s.Keys(queue)), fields...).Result()
	if err != nil && !errors.Is(err, errRedisNil) {
		return nil, nil, err
	}
	for i, n := range names {
		if v, ok := vals[2*i].(string); ok {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				last[n] = time.UnixMilli(ms)
			}
		}
		if v, ok := vals[2*i+1].(string); ok {
			jobs[n] = v
		}
	}
	return last, jobs, nil
}
