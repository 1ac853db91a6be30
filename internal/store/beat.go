package store

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Beat keys: entries are global (an entry names its queue); a tick's claim and an
// entry's progress live in its queue's hash tag, where the job goes.
func beatEntriesKey(ns string) string { return ns + ":beat:entries" }

// BeatChannel is where entry changes are announced to every beat replica.
func (s *Store) BeatChannel() string { return s.ns + ":beat:ev" }

// BeatEntries reads every stored entry (name -> JSON).
func (s *Store) BeatEntries(ctx context.Context) (map[string]string, error) {
	return s.rdb.HGetAll(ctx, beatEntriesKey(s.ns)).Result()
}

// SetBeatEntry stores an entry and tells every replica.
func (s *Store) SetBeatEntry(ctx context.Context, name, data string) error {
	if err := s.rdb.HSet(ctx, beatEntriesKey(s.ns), name, data).Err(); err != nil {
		return err
	}
	return s.rdb.Publish(ctx, s.BeatChannel(), name).Err()
}

// DeleteBeatEntry removes an entry; ErrNotFound when there is none.
func (s *Store) DeleteBeatEntry(ctx context.Context, name string) error {
	n, err := s.rdb.HDel(ctx, beatEntriesKey(s.ns), name).Result()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return s.rdb.Publish(ctx, s.BeatChannel(), name).Err()
}

// BeatFire is the outcome of firing a tick.
type BeatFire struct {
	Outcome string // ok, skipped, done, claimed, advanced
	JobID   string // the job enqueued (ok) or still waiting (skipped)
}

// FireBeat fires (or with advance, only marks done) tick of entry name on queue.
func (s *Store) FireBeat(ctx context.Context, queue, name string, tick time.Time, j NewJob, overlapSkip, advance bool, claimTTL time.Duration) (BeatFire, error) {
	k := s.Keys(queue)
	claim := k.prefix + "beat:" + name + ":" + strconv.FormatInt(tick.UnixMilli(), 10)
	skip, adv := "", ""
	if overlapSkip {
		skip = "skip"
	}
	if advance {
		adv = "advance"
	}
	keys := []string{claim, k.prefix + "beat", k.Records, k.Index, k.Lanes, k.Wake, k.Lane(j.Lane), k.Scheduled, k.Active}
	res, err := scriptBeatFire.Run(ctx, s.rdb, keys, s.nowMs(), tick.UnixMilli(), name, claimTTL.Milliseconds(),
		j.ID, j.Lane, j.Record, skip, adv).Slice()
	if err != nil {
		return BeatFire{}, err
	}
	f := BeatFire{Outcome: toStr(res[0])}
	if len(res) > 1 {
		f.JobID = toStr(res[1])
	}
	return f, nil
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
	vals, err := s.rdb.HMGet(ctx, s.Keys(queue).prefix+"beat", fields...).Result()
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
