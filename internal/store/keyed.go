package store

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"time"
)

// EnqueueKeyed stores one job under a schedule key: the job waiting under key (if any)
// is replaced, or kept when keep is set, atomically. It returns the id now waiting
// under the key and whether that is the kept, older job.
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
	res, err := s.withLanes(ctx, queue, func(laneKeys, members []string) ([]any, error) {
		if _, _, ref := splitPlace(j.Lane); ref != "" {
			for _, m := range fairCompanions(ref) {
				laneKeys, members = withMember(k, laneKeys, members, m)
			}
		} else {
			laneKeys, members = withMember(k, laneKeys, members, j.Lane)
		}
		keys := append([]string{k.Records, k.Index, k.Scheduled, k.Wake, k.SchedKeys, k.JobKeys,
			k.Attempts, k.Errors, k.Stacks, k.Results, k.Timings}, laneKeys...)
		args := make([]any, 0, 10+len(members))
		args = append(args, s.nowMs(), j.ID, j.Lane, j.Record, due, key, keepArg, k.SchedChannel, k.DoneChannel, len(members))
		for _, m := range members {
			args = append(args, m)
		}
		return scriptEnqueueKeyed.Run(ctx, s.rdb, keys, args...).Slice()
	})
	if err != nil {
		return "", false, err
	}
	if toStr(res[0]) == "kept" {
		return toStr(res[1]), true, nil
	}
	return j.ID, false, nil
}

// withMember adds lane member m (and its key) to a lane list that lacks it.
func withMember(k Keys, laneKeys, members []string, m string) ([]string, []string) {
	i := sort.SearchStrings(members, m)
	if i < len(members) && members[i] == m {
		return laneKeys, members
	}
	return append(append([]string(nil), laneKeys...), k.Lane(m)), append(append([]string(nil), members...), m)
}

// IDByKey returns the id of the job waiting (or running) under key; ErrNotFound when
// none, or when that job has ended and released its key.
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
