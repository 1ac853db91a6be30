package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chronoq/chronoq/job"
)

// Errors of the admin operations; the queue package maps them onto job's.
var (
	ErrNotFound = errors.New("not found")
	ErrActive   = errors.New("job is active")
	ErrEnded    = errors.New("job has ended")
)

// ErrBadMode is a mode argument (CancelMode, a purge's state) that names no mode.
var ErrBadMode = errors.New("store: unknown mode")

// CancelMode selects what Cancel does with the job it finds.
type CancelMode string

// The modes of Cancel. Their values are what cancel.lua reads.
const (
	CancelKeep   CancelMode = "cancel" // a waiting job is kept in the canceled set
	CancelDelete CancelMode = "delete" // a job in any state but active is removed
	CancelStop   CancelMode = "stop"   // as CancelKeep, and a running job is asked to stop
)

// CancelOutcome is what Cancel did, or why it did nothing.
type CancelOutcome string

// The outcomes of Cancel, as cancel.lua answers them.
const (
	Canceled      CancelOutcome = "canceled"
	Deleted       CancelOutcome = "deleted"
	Stopping      CancelOutcome = "stopping"
	CancelActive  CancelOutcome = "active"   // with ErrActive
	CancelEnded   CancelOutcome = "finished" // with ErrEnded
	CancelMissing CancelOutcome = "notfound" // with ErrNotFound
)

// Cancel cancels a pending or scheduled job named by id, or (id "") by schedule key: it
// is kept in the canceled set (Canceled). CancelDelete removes it instead, and an ended
// one too (Deleted); CancelStop also asks a running one to stop (Stopping). Waiters of
// a pending or scheduled job are told it was canceled. It returns the outcome and the
// job's id; a mode not among the constants is an error wrapping ErrBadMode.
func (s *Store) Cancel(ctx context.Context, queue, id, key string, mode CancelMode) (CancelOutcome, string, error) {
	k := s.Keys(queue)
	switch mode {
	case CancelKeep, CancelDelete, CancelStop:
	default:
		return "", "", fmt.Errorf("%w: cancel mode %q", ErrBadMode, mode)
	}
	res, err := s.withLanes(ctx, queue, func(laneKeys, members []string) ([]any, error) {
		keys := append([]string{k.Records, k.Scheduled, k.Index, k.Active, k.Failed, k.Succeeded, k.Attempts, k.Errors,
			k.Stacks, k.Results, k.Timings, k.SchedKeys, k.JobKeys, k.Stops, k.Canceled}, laneKeys...)
		args := make([]any, 0, 9+len(members))
		args = append(args, id, key, k.DoneChannel, string(mode), s.nowMs(), k.StopChannel, len(members))
		for _, m := range members {
			args = append(args, m)
		}
		args = append(args, s.CanceledAge.Milliseconds(), s.MaxCanceled)
		return scriptCancel.Run(ctx, s.rdb, keys, args...).Slice()
	})
	if err != nil {
		return "", "", err
	}
	how, jid := CancelOutcome(toStr(res[0])), toStr(res[1])
	switch how {
	case CancelActive:
		return how, jid, ErrActive
	case CancelEnded:
		return how, jid, ErrEnded
	case CancelMissing:
		return how, jid, ErrNotFound
	}
	return how, jid, nil
}

// RequeueFailed moves failed jobs back to pending with fresh retries: ids, or when
// ids is empty every job that failed by the time failedBy (a job failed again since
// stays failed: it is moved once). It returns how many moved. A keyed job whose key
// names a newer job stays failed. Without ids it pages through the failed set in
// order, one script run per RequeuePage jobs examined, each starting after the cursor (the
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

// Purge deletes up to limit jobs in state (pending, scheduled, failed, succeeded or
// canceled; another is an error wrapping ErrBadMode); callers repeat until it returns 0.
func (s *Store) Purge(ctx context.Context, queue string, state job.State, limit int) (int, error) {
	k := s.Keys(queue)
	set, mode := "", "set"
	switch state {
	case job.StatePending:
		set, mode = k.Scheduled, "pending" // set unused
	case job.StateScheduled:
		set = k.Scheduled
	case job.StateFailed:
		set = k.Failed
	case job.StateSucceeded:
		set = k.Succeeded
	case job.StateCanceled:
		set = k.Canceled
	default:
		return 0, fmt.Errorf("%w: cannot purge state %q", ErrBadMode, state)
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
	if state == job.StatePending || state == job.StateScheduled {
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
		k.Stops, k.Active, k.FairUse, k.FairCount, k.FairVirtual},
		s.nowMs(), s.MaxSucceeded, s.FailedAge.Milliseconds(), s.MaxFailed, s.CanceledAge.Milliseconds(), s.MaxCanceled).Int()
}

// Paused reports whether queue is paused.
func (s *Store) Paused(ctx context.Context, queue string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.Keys(queue).Paused).Result()
	return n == 1, err
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
