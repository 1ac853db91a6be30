package store

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/redis/go-redis/v9"
)

// Counts are a queue's job counts by state, plus its lifetime counters.
type Counts struct {
	Pending   int64 `json:"pending"`
	Scheduled int64 `json:"scheduled"`
	Active    int64 `json:"active"`
	Failed    int64 `json:"failed"`
	Succeeded int64 `json:"succeeded"`
	Canceled  int64 `json:"canceled"`
	// counters since the queue began
	Processed   int64 `json:"processed_total"`
	FailedTotal int64 `json:"failed_total"`
	Retried     int64 `json:"retried_total"`
	Paused      bool  `json:"paused"`
}

// pendingSnapshot runs read in one MULTI over the lanes holding pending jobs: those in
// the lane index, read first and read again inside the MULTI; when they changed in
// between, it reads again, so a job moving into a lane that just appeared is not
// missed. idx, if given, receives the index as the MULTI saw it.
func (s *Store) pendingSnapshot(ctx context.Context, queue string, read func(pipe redis.Pipeliner, lanes []string), idx ...*[]redis.Z) error {
	k := s.Keys(queue)
	members, err := s.rdb.ZRange(ctx, k.Index, 0, -1).Result()
	if err != nil {
		return err
	}
	for try := 0; ; try++ {
		pipe := s.rdb.TxPipeline()
		read(pipe, members)
		now := pipe.ZRangeWithScores(ctx, k.Index, 0, -1)
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		seen := make(map[string]bool, len(members))
		for _, m := range members {
			seen[m] = true
		}
		again := members[:0:0]
		changed := false
		for _, z := range now.Val() {
			m := z.Member.(string)
			again = append(again, m)
			changed = changed || !seen[m]
		}
		// a lane that emptied meanwhile read as empty: only a new one needs a new read
		if !changed || try == 4 {
			if len(idx) > 0 {
				*idx[0] = now.Val()
			}
			return nil
		}
		members = again
	}
}

// Counts reads a queue's counts in one round trip (counts and ranges, never scans).
func (s *Store) Counts(ctx context.Context, queue string) (Counts, error) {
	k := s.Keys(queue)
	// MULTI, so that a job moving between states is counted once, never twice or not at all
	var lanes []*redis.IntCmd
	var sch, act, fail, done, canc, paused *redis.IntCmd
	var stat *redis.MapStringStringCmd
	err := s.pendingSnapshot(ctx, queue, func(pipe redis.Pipeliner, members []string) {
		lanes = make([]*redis.IntCmd, len(members))
		for i, m := range members {
			lanes[i] = pipe.ZCard(ctx, k.Lane(m))
		}
		sch, act, fail, done = pipe.ZCard(ctx, k.Scheduled), pipe.ZCard(ctx, k.Active), pipe.ZCard(ctx, k.Failed), pipe.ZCard(ctx, k.Succeeded)
		canc = pipe.ZCard(ctx, k.Canceled)
		stat = pipe.HGetAll(ctx, k.Counters)
		paused = pipe.Exists(ctx, k.Paused)
	})
	if err != nil {
		return Counts{}, err
	}
	var c Counts
	for _, l := range lanes {
		c.Pending += l.Val()
	}
	c.Scheduled, c.Active, c.Failed, c.Succeeded, c.Canceled = sch.Val(), act.Val(), fail.Val(), done.Val(), canc.Val()
	st := stat.Val()
	c.Processed, _ = strconv.ParseInt(st["succeeded"], 10, 64)
	c.FailedTotal, _ = strconv.ParseInt(st["failed"], 10, 64)
	c.Retried, _ = strconv.ParseInt(st["retried"], 10, 64)
	c.Paused = paused.Val() == 1
	return c, nil
}

// PendingIDs lists pending job ids in dequeue order, from offset, at most limit. It
// merges the heads of the lanes, so it reads offset+limit entries per lane at most.
func (s *Store) PendingIDs(ctx context.Context, queue string, offset, limit int) ([]string, error) {
	k := s.Keys(queue)
	var members []string
	var heads []*redis.ZSliceCmd
	var idx []redis.Z
	err := s.pendingSnapshot(ctx, queue, func(pipe redis.Pipeliner, lanes []string) {
		members = lanes
		heads = make([]*redis.ZSliceCmd, len(lanes))
		for i, m := range lanes {
			heads[i] = pipe.ZRangeWithScores(ctx, k.Lane(m), 0, int64(offset+limit-1))
		}
	}, &idx)
	if err != nil {
		return nil, err
	}
	indexScore := map[string]float64{}
	for _, z := range idx {
		indexScore[z.Member.(string)] = z.Score
	}
	type entry struct {
		key float64
		id  string
	}
	var all []entry
	for i, m := range members {
		zs := heads[i].Val()
		if len(zs) == 0 {
			continue
		}
		if isFairRef(m) {
			// a band's fair set: its members name the jobs; they are listed by due time
			// (the order between keys is decided at each fetch)
			off := float64(9-int(m[0]-'0')) * 1e13
			for _, z := range zs {
				f := strings.Split(z.Member.(string), placeSep)
				if len(f) == 5 {
					due, _ := strconv.ParseFloat(f[4], 64)
					all = append(all, entry{off + due, f[2]})
				}
			}
			continue
		}
		// the lane's offset in the global order, as the scripts keep it in the index
		off, ok := indexScore[m]
		if ok {
			off -= zs[0].Score
		} else {
			prio, _, _ := ParseLaneMember(m)
			off = float64(9-prio) * 1e13
		}
		for _, z := range zs {
			all = append(all, entry{off + z.Score, z.Member.(string)})
		}
	}
	sort.SliceStable(all, func(a, b int) bool {
		if all[a].key != all[b].key {
			return all[a].key < all[b].key
		}
		return all[a].id < all[b].id // as fetch.lua breaks a tie: the one enqueued first
	})
	var out []string
	for i := offset; i < len(all) && len(out) < limit; i++ {
		out = append(out, all[i].id)
	}
	return out, nil
}

// SetIDs lists the ids in a state's set: scheduled and active by time, earliest first;
// failed and succeeded newest first.
func (s *Store) SetIDs(ctx context.Context, queue string, state job.State, offset, limit int) ([]string, error) {
	k := s.Keys(queue)
	var key string
	rev := false
	switch state {
	case job.StateScheduled:
		key = k.Scheduled
	case job.StateActive:
		key = k.Active
	case job.StateFailed:
		key, rev = k.Failed, true
	case job.StateSucceeded:
		key, rev = k.Succeeded, true
	case job.StateCanceled:
		key, rev = k.Canceled, true
	default:
		return nil, errors.New("store: no set for state " + string(state))
	}
	start, stop := int64(offset), int64(offset+limit-1)
	if rev {
		return s.rdb.ZRevRange(ctx, key, start, stop).Result()
	}
	return s.rdb.ZRange(ctx, key, start, stop).Result()
}

// Jobs reads jobs by id in one round trip; ids no longer known are left out.
func (s *Store) Jobs(ctx context.Context, queue string, ids []string) ([]*job.Job, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	k := s.Keys(queue)
	// MULTI: a plain pipeline lets an ack run between the reads, and a job would show
	// as succeeded with its result not yet read
	pipe := s.rdb.TxPipeline()
	recs := pipe.HMGet(ctx, k.Records, ids...)
	atts := pipe.HMGet(ctx, k.Attempts, ids...)
	errs := pipe.HMGet(ctx, k.Errors, ids...)
	stks := pipe.HMGet(ctx, k.Stacks, ids...)
	ress := pipe.HMGet(ctx, k.Results, ids...)
	fins := pipe.HMGet(ctx, k.Timings, ids...)
	owns := pipe.HMGet(ctx, k.Owners, ids...)
	type where struct{ sch, act, fail, done, canc *redis.FloatCmd }
	ws := make([]where, len(ids))
	for i, id := range ids {
		ws[i] = where{pipe.ZScore(ctx, k.Scheduled, id), pipe.ZScore(ctx, k.Active, id), pipe.ZScore(ctx, k.Failed, id), pipe.ZScore(ctx, k.Succeeded, id),
			pipe.ZScore(ctx, k.Canceled, id)}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var out []*job.Job
	for i, id := range ids {
		rec, _ := recs.Val()[i].(string)
		line, body, ok := cutRecord(rec)
		if !ok {
			continue
		}
		lane, _, _ := splitPlace(line)
		j := &job.Job{ID: id, Options: job.DefaultOptions()}
		j.Options.Queue = queue
		if prio, task, err := ParseLaneMember(lane); err == nil {
			j.Options.Priority, j.Task = prio, task
		}
		j.Options.Estimate = LaneEstimate(lane)
		if err := UnmarshalRecord([]byte(body), j); err != nil {
			j.LastError = err.Error()
		}
		j.Attempt, _ = strconv.Atoi(str(atts.Val()[i]))
		if e := str(errs.Val()[i]); e != "" {
			j.LastError = e
		}
		j.Stack = str(stks.Val()[i])
		if r := str(ress.Val()[i]); r != "" {
			j.Result = []byte(r)
		}
		if st, fin, ok := strings.Cut(str(fins.Val()[i]), "|"); ok {
			j.StartedAt, j.FinishedAt = msTime(st), msTime(fin)
		}
		w := ws[i]
		switch {
		case w.act.Err() == nil:
			j.State = job.StateActive
			parts := strings.SplitN(str(owns.Val()[i]), "|", 4)
			if len(parts) == 4 {
				j.Worker, j.StartedAt = parts[0], msTime(parts[1])
			}
			j.Attempt++ // the running attempt counts
		case w.sch.Err() == nil:
			j.State, j.DueAt = job.StateScheduled, time.UnixMilli(int64(w.sch.Val())).UTC()
		case w.fail.Err() == nil:
			j.State = job.StateFailed
		case w.done.Err() == nil:
			j.State = job.StateSucceeded
			j.Attempt++
		case w.canc.Err() == nil:
			j.State = job.StateCanceled
			if j.FinishedAt.IsZero() {
				j.FinishedAt = time.UnixMilli(int64(w.canc.Val())).UTC()
			}
		default:
			j.State = job.StatePending
		}
		out = append(out, j)
	}
	return out, nil
}

func str(v any) string { s, _ := v.(string); return s }

// Job reads one job; ErrNotFound when it is gone.
func (s *Store) Job(ctx context.Context, queue, id string) (*job.Job, error) {
	js, err := s.Jobs(ctx, queue, []string{id})
	if err != nil {
		return nil, err
	}
	if len(js) == 0 {
		return nil, ErrNotFound
	}
	return js[0], nil
}

// Minute is one minute of a queue's activity.
type Minute struct {
	Start                      time.Time
	Succeeded, Failed, Retried int64
	WaitSum                    time.Duration // summed wait from due to start of the succeeded jobs that report it
	WaitCount                  int64
	WaitMax                    time.Duration
}

// AddActivity adds tallies to the queue's activity ring, in one script run. Each
// Minute's Start names its minute; a tally for a minute the ring has moved past is
// dropped.
func (s *Store) AddActivity(ctx context.Context, queue string, mins []Minute) error {
	if len(mins) == 0 {
		return nil
	}
	args := make([]any, 0, 1+7*len(mins))
	args = append(args, len(mins))
	for _, m := range mins {
		args = append(args, m.Start.UnixMilli()/60000, m.Succeeded, m.Failed, m.Retried,
			m.WaitSum.Milliseconds(), m.WaitCount, m.WaitMax.Milliseconds())
	}
	return scriptActivity.Run(ctx, s.rdb, []string{s.Keys(queue).Activity}, args...).Err()
}

// ActivityMinutes is how far back the activity ring reaches.
const ActivityMinutes = 60

// Activity returns the queue's last n minutes (at most ActivityMinutes), oldest first,
// the current minute last; minutes without activity are zero. One HGETALL of at most
// 60 fields.
func (s *Store) Activity(ctx context.Context, queue string, n int) ([]Minute, error) {
	n = min(max(n, 1), ActivityMinutes)
	raw, err := s.rdb.HGetAll(ctx, s.Keys(queue).Activity).Result()
	if err != nil {
		return nil, err
	}
	now := s.now().UnixMilli() / 60000
	out := make([]Minute, n)
	for i := range out {
		out[i].Start = time.UnixMilli((now - int64(n-1-i)) * 60000)
	}
	for _, v := range raw {
		p := strings.Split(v, "|")
		if len(p) != 7 {
			continue
		}
		var f [7]int64
		for i := range p {
			f[i], _ = strconv.ParseInt(p[i], 10, 64)
		}
		i := n - 1 - int(now-f[0])
		if i < 0 || i >= n {
			continue // older than asked, or from a clock ahead of ours
		}
		out[i] = Minute{Start: out[i].Start, Succeeded: f[1], Failed: f[2], Retried: f[3],
			WaitSum: time.Duration(f[4]) * time.Millisecond, WaitCount: f[5], WaitMax: time.Duration(f[6]) * time.Millisecond}
	}
	return out, nil
}
