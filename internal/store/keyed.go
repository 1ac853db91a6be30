package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// EnqueueKeyed stores one job under a schedule key: the job waiting under key (if any)
// is replaced, or kept when keep is set. It returns the id now waiting under the key
// and whether that is the kept, older job.
func (s *Store) EnqueueKeyed(ctx context.Context, queue string, j NewJob, key string, keep bool) (string, bool, error) {
	k := s.Keys(queue)
	due := "0"
	if !j.Due.IsZero() {
		due = strconv.FormatInt(j.Due.UnixMilli(), 10)
	}
	keepArg := ""
	if keep {
		keepArg = "1"
	}
	for try := 0; try < 10; try++ {
		old, oldLane, err := s.keyed(ctx, queue, key)
		if err != nil {
			return "", false, err
		}
		oldLaneKey := k.Lane(j.Lane)
		if oldLane != "" {
			oldLaneKey = k.Lane(oldLane)
		}
		keys := []string{k.Records, k.Index, k.Lanes, k.Scheduled, k.Wake, k.SchedKeys, k.Lane(j.Lane), oldLaneKey,
			k.Attempts, k.Errors, k.Stacks, k.Results, k.Timings}
		res, err := scriptEnqueueKeyed.Run(ctx, s.rdb, keys, s.nowMs(), j.ID, j.Lane, j.Record, due, key, keepArg,
			old, oldLane, k.SchedChannel, k.DoneChannel).Slice()
		if err != nil {
			return "", false, err
		}
		switch toStr(res[0]) {
		case "ok":
			return j.ID, false, nil
		case "kept":
			return toStr(res[1]), true, nil
		}
		// the key moved between our read and the script: read again
	}
	return "", false, fmt.Errorf("chronoq: schedule key %q kept changing; try again", key)
}

// keyed reads the id under key and, when its record exists, its lane member.
func (s *Store) keyed(ctx context.Context, queue, key string) (id, lane string, err error) {
	k := s.Keys(queue)
	id, err = s.rdb.HGet(ctx, k.SchedKeys, key).Result()
	if errors.Is(err, errRedisNil) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	rec, err := s.rdb.HGet(ctx, k.Records, id).Result()
	if err != nil && !errors.Is(err, errRedisNil) {
		return "", "", err
	}
	lane, _, _ = cutRecord(rec)
	return id, lane, nil
}

// IDByKey returns the id of the job last enqueued under key (ErrNotFound when none,
// or when that job has ended and its key was released).
func (s *Store) IDByKey(ctx context.Context, queue, key string) (string, error) {
	id, err := s.rdb.HGet(ctx, s.Keys(queue).SchedKeys, key).Result()
	if errors.Is(err, errRedisNil) {
		return "", ErrNotFound
	}
	return id, err
}

// Upcoming lists the ids of queue's scheduled jobs due in [from, to], earliest first.
func (s *Store) Upcoming(ctx context.Context, queue string, from, to time.Time, limit int) ([]string, error) {
	return s.rdb.ZRangeArgs(ctx, redisZRangeArgs(s.Keys(queue).Scheduled, from, to, limit)).Result()
}
