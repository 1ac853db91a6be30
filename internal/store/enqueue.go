package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chronoq/chronoq/ranking/fairshare"
	"github.com/redis/go-redis/v9"

	"github.com/chronoq/chronoq/job"
)

// NewJob is one job to store: its lane and its encoded record.
type NewJob struct {
	ID     string
	Lane   string    // LaneMember(priority, task), or a size-bucket lane (Lane)
	Record []byte    // MarshalRecord
	Due    time.Time // zero: pending at once
}

// PrepareJob makes what the store keeps of j, a job whose options are final: its lane
// (Lane: its estimate's or its cost hint's size bucket, else its task's) and its
// record. Enqueue and the beat both build their jobs with it, so that a job lands in
// the same lane whichever of them made it. It reads Redis only as Lane does: for a job
// with a cost hint and no estimate, the queue's cost models, at most once per modelTTL.
func (s *Store) PrepareJob(ctx context.Context, j *job.Job) (NewJob, error) {
	o := j.Options
	lane, err := s.Lane(ctx, o.Queue, o.Priority, j.Task, o.Cost, o.Estimate)
	if err != nil {
		return NewJob{}, fmt.Errorf("store: the lane of job %s: %w", j.ID, err)
	}
	// fair mode: the job goes to its key's place in a fair set (its key's default
	// lateness applies unless the job has its own)
	mc, err := s.models(ctx, o.Queue)
	if err != nil {
		return NewJob{}, fmt.Errorf("store: the fair mode of queue %q: %w", o.Queue, err)
	}
	if mc.fair != fairshare.ModeOff {
		due := s.nowMs()
		if !j.DueAt.IsZero() {
			due = j.DueAt.UnixMilli()
		}
		if mc.configured && j.Options.LateBy == 0 {
			late, err := s.fairLateness(ctx, o.Queue, o.FairKey)
			if err != nil {
				return NewJob{}, err
			}
			j.Options.LateBy = late
		}
		lane = FairPlace(lane, o.FairKey, fairScore(mc, lane, due))
	}
	rec, err := MarshalRecord(j)
	if err != nil {
		return NewJob{}, fmt.Errorf("store: the record of job %s: %w", j.ID, err)
	}
	return NewJob{ID: j.ID, Lane: lane, Record: rec, Due: j.DueAt}, nil
}

// Plain is j in its lane rather than a fair set (the beat fires into one lane).
func (j NewJob) Plain() NewJob {
	j.Lane, _, _ = splitPlace(j.Lane)
	return j
}

// fair reports whether j goes to a fair set.
func (j NewJob) fair() bool { return strings.Contains(j.Lane, placeSep) }

// Enqueue stores jobs of one queue in one script run per MaxBatch jobs, all batches
// pipelined into one round trip.
func (s *Store) Enqueue(ctx context.Context, queue string, jobs []NewJob) error {
	if len(jobs) == 0 {
		return nil
	}
	var fair []NewJob
	for _, j := range jobs {
		if j.fair() {
			fair = append(fair, j)
		}
	}
	if len(fair) > 0 {
		if len(fair) < len(jobs) { // the queue's mode changed between jobs: both kinds
			plain := make([]NewJob, 0, len(jobs)-len(fair))
			for _, j := range jobs {
				if !j.fair() {
					plain = append(plain, j)
				}
			}
			if err := s.Enqueue(ctx, queue, plain); err != nil {
				return err
			}
		}
		return s.enqueueFair(ctx, queue, fair)
	}
	if len(jobs) == 1 && jobs[0].Due.IsZero() {
		return s.enqueueOne(ctx, queue, jobs[0])
	}
	err := s.enqueueOnce(ctx, queue, jobs)
	if isNoScript(err) { // pipelined EVALSHA cannot fall back to EVAL: load, send again
		if err = s.LoadScripts(ctx); err == nil {
			err = s.enqueueOnce(ctx, queue, jobs)
		}
	}
	return err
}

// enqueueOne stores one job that may run at once, with the lean script (and the one
// that may hand the job straight to an idle worker).
func (s *Store) enqueueOne(ctx context.Context, queue string, j NewJob) error {
	k := s.Keys(queue)
	keys := []string{k.Records, k.Index, k.Wake, k.Idle, k.Ready, k.Active, k.Owners, k.Paused, k.Lane(j.Lane), k.Limits}
	return scriptEnqueueOne.Run(ctx, s.rdb, keys, s.nowMs(), j.ID, j.Lane, j.Record, s.leaseClock()).Err()
}

func (s *Store) enqueueOnce(ctx context.Context, queue string, jobs []NewJob) error {
	k := s.Keys(queue)
	now := s.nowMs()
	pipe := s.rdb.Pipeline()
	cmds := make([]interface{ Err() error }, 0, len(jobs)/MaxBatch+1)
	for start := 0; start < len(jobs); start += MaxBatch {
		batch := jobs[start:min(start+MaxBatch, len(jobs))]
		laneNo := map[string]int{}
		var members []string
		for _, j := range batch {
			if _, ok := laneNo[j.Lane]; !ok {
				members = append(members, j.Lane)
				laneNo[j.Lane] = len(members)
			}
		}
		keys := make([]string, 0, 5+len(members))
		keys = append(keys, k.Records, k.Index, k.Scheduled, k.Wake, k.Limits)
		for _, m := range members {
			keys = append(keys, k.Lane(m))
		}
		args := make([]any, 0, 4+len(members)+4*len(batch))
		args = append(args, now, len(batch), len(members), k.SchedChannel)
		for _, m := range members {
			args = append(args, m)
		}
		for _, j := range batch {
			due := int64(0)
			if !j.Due.IsZero() {
				due = j.Due.UnixMilli()
			}
			args = append(args, j.ID, laneNo[j.Lane], j.Record, strconv.FormatInt(due, 10))
		}
		cmds = append(cmds, scriptEnqueue.Run(ctx, pipe, keys, args...))
	}
	return execAll(ctx, pipe, cmds)
}

// execAll runs a pipeline of script calls and returns the first error among them.
func execAll[C interface{ Err() error }](ctx context.Context, pipe redis.Pipeliner, cmds []C) error {
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// RegisterQueue adds queue to the namespace's list of queues.
func (s *Store) RegisterQueue(ctx context.Context, queue string) error {
	return s.rdb.SAdd(ctx, queuesKey(s.ns), queue).Err()
}

// Queues lists the queues ever registered.
func (s *Store) Queues(ctx context.Context) ([]string, error) {
	return s.rdb.SMembers(ctx, queuesKey(s.ns)).Result()
}

// enqueueFair stores jobs placed in fair sets (PrepareJob in fair mode), MaxBatch jobs
// per script run, all pipelined into one round trip.
func (s *Store) enqueueFair(ctx context.Context, queue string, jobs []NewJob) error {
	k := s.Keys(queue)
	now := s.nowMs()
	run := func() error {
		pipe := s.rdb.Pipeline()
		var cmds []*redis.Cmd
		for start := 0; start < len(jobs); start += MaxBatch {
			batch := jobs[start:min(start+MaxBatch, len(jobs))]
			var refs []string
			for _, j := range batch {
				if _, _, ref := splitPlace(j.Lane); !slices.Contains(refs, ref) {
					refs = append(refs, ref)
				}
			}
			members := fairMembers(refs)
			keys := make([]string, 0, 10+len(members))
			keys = append(keys, k.Records, k.Index, k.Scheduled, k.Wake, k.Idle, k.Ready, k.Active, k.Owners, k.Paused, k.Limits)
			args := make([]any, 0, 5+len(members)+4*len(batch))
			args = append(args, now, len(batch), s.leaseClock(), k.SchedChannel, len(members))
			for _, m := range members {
				keys = append(keys, k.Lane(m))
				args = append(args, m)
			}
			for _, j := range batch {
				due := int64(0)
				if !j.Due.IsZero() {
					due = j.Due.UnixMilli()
				}
				args = append(args, j.ID, j.Lane, j.Record, strconv.FormatInt(due, 10))
			}
			cmds = append(cmds, scriptEnqueueFair.Run(ctx, pipe, keys, args...))
		}
		return execAll(ctx, pipe, cmds)
	}
	err := run()
	if isNoScript(err) {
		if err = s.LoadScripts(ctx); err == nil {
			err = run()
		}
	}
	return err
}
