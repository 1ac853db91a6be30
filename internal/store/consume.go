package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrPaused is returned by Fetch on a paused queue.
var ErrPaused = errors.New("chronoq: queue paused")

// Fetched is a job leased to a worker.
type Fetched struct {
	ID       string
	Lane     string // lane member
	Record   []byte // nil when the record is gone (the job was purged while queued)
	Attempts int    // failed attempts before this one
	// Predicted is the job's predicted run time in ms when it was taken (shadow and
	// active modes; 0 when none).
	Predicted float64
	// At is when the lease began, as the owner entry records it (ms): acknowledging
	// with Done.Started = At ties the acknowledgement to this very lease.
	At time.Time
	// Due is when this attempt became due: the job's arrival, or the due time of its
	// promotion or retry.
	Due time.Time
	// Fair is the fair set the job was taken from (FairRef of its band), "" when it came
	// from a lane; its acknowledgement passes it on (Done.Fair), so that its key's charge
	// is corrected to its run time.
	Fair string
}

// Lease names one lease of a job: the job and when the lease began (Fetched.At). Every
// state change of an active job names the lease it ends, so a run whose lease was taken
// back changes nothing, even when the same worker holds a newer lease of the job.
type Lease struct {
	ID    string
	Start time.Time
}

// Lease is the lease this fetch (or hand-off) began.
func (f Fetched) Lease() Lease { return Lease{ID: f.ID, Start: f.At} }

// leaseStart is a lease start as the scripts hold it ("" for none: any lease).
func leaseStart(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// maxScoreMs bounds a lane score read back as a time: year 10000 in unix ms.
const maxScoreMs = 253402300800000

// Fetch leases up to n (at most MaxFetch) jobs of queue, in dequeue order, to worker
// for lease, counted from Redis' clock when the script runs (so a fetch delayed on its
// way, or a worker clock behind Redis', still gets a full lease).
func (s *Store) Fetch(ctx context.Context, queue, worker string, n int, lease time.Duration) ([]Fetched, error) {
	b, err := s.FetchBatch(ctx, queue, worker, n, lease)
	return b.Jobs, err
}

// Batch is what one fetch took, and when work that a rate limit held back gets its
// next token.
type Batch struct {
	Jobs []Fetched
	// TokenIn is how long after the fetch (in Redis' time) the earliest job held back
	// by a rate limit gets a token; 0 when none was held back by a rate. Work held back
	// by a cap on running jobs waits for a wake-up: the script ending a job of its
	// group leaves one.
	TokenIn time.Duration
}

// FetchBatch is Fetch, with the time the fetch's caller may sleep until when a rate
// limit held work back (see Batch).
func (s *Store) FetchBatch(ctx context.Context, queue, worker string, n int, lease time.Duration) (Batch, error) {
	n = min(n, MaxFetch)
	k := s.Keys(queue)
	sent := s.now()
	res, err := s.withLanes(ctx, queue, func(laneKeys, members []string) ([]any, error) {
		keys := append([]string{k.Index, k.Active, k.Owners, k.Records, k.Attempts, k.Paused, k.Wake, k.Rank, k.TaskStats, k.Limits, k.LimitState}, laneKeys...)
		args := make([]any, 0, 5+len(members))
		args = append(args, s.leaseClock(), n, lease.Milliseconds(), worker, len(members))
		for _, m := range members {
			args = append(args, m)
		}
		return scriptFetch.Run(ctx, s.rdb, keys, args...).Slice()
	})
	if err != nil {
		return Batch{}, err
	}
	if len(res) > 0 && res[0] == "paused" {
		return Batch{}, ErrPaused
	}
	if len(res) < 4 {
		return Batch{}, fmt.Errorf("store: fetch answered %v", res)
	}
	startMs := toInt(res[1])
	s.observeClock(sent, s.now(), startMs)
	start := time.UnixMilli(startMs)
	var b Batch
	if next := toStr(res[3]); next != "" {
		if at, err := strconv.ParseInt(next, 10, 64); err == nil && at > startMs {
			b.TokenIn = time.Duration(min(at-startMs, maxTokenWaitMs)) * time.Millisecond
		}
	}
	out := make([]Fetched, 0, (len(res)-4)/5)
	var used []string
	for i := 4; i+4 < len(res); i += 5 {
		f := Fetched{ID: toStr(res[i]), At: start}
		rec := toStr(res[i+1])
		if line, body, ok := cutRecord(rec); ok {
			f.Lane, _, f.Fair = splitPlace(line)
			f.Record = []byte(body)
		}
		f.Attempts, _ = strconv.Atoi(toStr(res[i+2]))
		if p := toStr(res[i+3]); p != "" { // none outside the learned order: no parse error to build
			f.Predicted, _ = strconv.ParseFloat(p, 64)
		}
		if d := toStr(res[i+4]); d != "" {
			// a lane score is a unix ms; a damaged one (inf, NaN, past any date) is no due
			// time rather than whatever int64 of it the platform makes
			if due, err := strconv.ParseFloat(d, 64); err == nil && due >= 0 && due < maxScoreMs {
				f.Due = time.UnixMilli(int64(due))
			}
		}
		out = append(out, f)
		lane := f.Lane
		if f.Fair != "" {
			lane = f.Fair
		}
		if len(used) == 0 || used[len(used)-1] != lane {
			used = append(used, lane)
		}
	}
	s.useLanes(queue, used...)
	if gone := toStr(res[2]); gone != "" { // after marking use: most lanes used are the ones emptied
		s.drainedLanes(queue, strings.Split(gone, "\n"))
	}
	b.Jobs = out
	return b, nil
}

// maxTokenWaitMs bounds Batch.TokenIn: the slowest rate (1/h) is a token an hour.
const maxTokenWaitMs = 3600_000

// cutRecord splits a stored record into its lane member and the encoded job.
func cutRecord(rec string) (lane, body string, ok bool) {
	for i := 0; i < len(rec); i++ {
		if rec[i] == '\n' {
			return rec[:i], rec[i+1:], true
		}
	}
	return "", "", false
}

// Done is a succeeded job to acknowledge.
type Done struct {
	ID        string
	Retention time.Duration
	Result    []byte
	// Started is the lease's start (Fetched.At): only that lease is acknowledged, not
	// an older one of the same job and worker. Zero: any lease of the worker.
	Started time.Time
	// Sample feeds the learned order (outside fifo mode): the job's task, prediction,
	// run time and timestamps. A zero Sample (no Task) feeds nothing.
	Sample Sample
	// Key is the job's schedule key ("" for none): released as the job ends.
	Key string
	// Fair is Fetched.Fair.
	Fair string
}

// Sample is one finished job as the ranking statistics and quality window see it.
type Sample struct {
	Task      string
	Predicted float64 // ms; 0: none
	Ran       time.Duration
	Enqueued  time.Time
	Started   time.Time
	// CostName and Cost: the job's cost hint for the task's cost model ("" for none).
	CostName string
	Cost     float64
}

func (s Sample) encodeCost() string {
	if s.CostName == "" || s.Cost < 0 {
		return ""
	}
	return s.CostName + "|" + strconv.FormatFloat(math.Log1p(s.Cost), 'g', 9, 64)
}

func (s Sample) encode() string {
	if s.Task == "" {
		return ""
	}
	pred := ""
	if s.Predicted > 0 {
		pred = strconv.FormatFloat(s.Predicted, 'f', 3, 64)
	}
	return s.Task + "|" + pred + "|" + strconv.FormatFloat(float64(s.Ran.Microseconds())/1000, 'f', 3, 64) +
		"|" + strconv.FormatInt(s.Enqueued.UnixMilli(), 10) + "|" + strconv.FormatInt(s.Started.UnixMilli(), 10)
}

// windowPerAck is how many jobs of one acknowledgement the quality window records:
// a recent sample whose cost does not grow with the batch.
const windowPerAck = 8

// Ack records succeeded jobs held by worker in one script run. It returns the ids the
// worker no longer held (their lease had been taken back); those are not recorded.
func (s *Store) Ack(ctx context.Context, queue, worker string, done []Done) (lost []string, err error) {
	if len(done) == 0 {
		return nil, nil
	}
	k := s.Keys(queue)
	keys := []string{k.Active, k.Owners, k.Records, k.Attempts, k.Succeeded, k.Results, k.Timings, k.Counters, k.Errors, k.Stacks,
		k.Rank, k.TaskStats, k.Window, k.Models, k.SchedKeys, k.JobKeys, k.Limits, k.LimitState, k.Wake}
	args := make([]any, 0, 6+9*len(done))
	trim := "0"
	if every := uint64(max(s.TrimEvery, 1)); (s.ackCalls.Add(1)-1)%every == 0 {
		trim = "1"
	}
	args = append(args, s.nowMs(), worker, k.DoneChannel, len(done), s.MaxSucceeded, trim)
	for i, d := range done {
		sample := ""
		if i < windowPerAck { // the quality window keeps a few jobs of each call
			sample = d.Sample.encode()
		}
		started := ""
		if !d.Started.IsZero() {
			started = strconv.FormatInt(d.Started.UnixMilli(), 10)
		}
		args = append(args, d.ID, d.Retention.Milliseconds(), d.Result, started,
			d.Sample.Task, strconv.FormatFloat(float64(d.Sample.Ran.Microseconds())/1000, 'f', 3, 64), sample, d.Sample.encodeCost(), d.Key)
	}
	// jobs taken from fair sets: their bands' keys, after the jobs (none otherwise)
	var fair []string
	for _, d := range done {
		if d.Fair != "" && !slices.Contains(fair, d.Fair) {
			fair = append(fair, d.Fair)
		}
	}
	if len(fair) > 0 {
		members := fairMembers(fair)
		args = append(args, len(members))
		for _, m := range members {
			keys = append(keys, k.Lane(m))
			args = append(args, m)
		}
	}
	return scriptAck.Run(ctx, s.rdb, keys, args...).StringSlice()
}

// Failure is a failed attempt to record.
type Failure struct {
	ID      string
	Retry   bool      // schedule another attempt at Due; else move to the failed set
	Due     time.Time // for a retry
	Error   string
	Stack   string
	Started time.Time
}

// Fail records a failed attempt of a job held by worker ("" skips the ownership check).
// It reports false when the worker no longer held the job.
func (s *Store) Fail(ctx context.Context, queue, worker string, f Failure) (bool, error) {
	r, err := s.FailResult(ctx, queue, worker, f)
	return r != FailNotHeld, err
}

// FailOutcome is what recording a failed attempt did.
type FailOutcome int

// The outcomes of FailResult.
const (
	FailNotHeld    FailOutcome = 0 // the worker no longer held the job: nothing recorded
	FailRecorded   FailOutcome = 1 // retry scheduled, or moved to the failed set
	FailSuperseded FailOutcome = 2 // a retry dropped: a newer job waits under its key
	FailStopped    FailOutcome = 3 // the job was asked to stop: it ended canceled
)

// FailResult is Fail, telling the outcomes apart.
func (s *Store) FailResult(ctx context.Context, queue, worker string, f Failure) (FailOutcome, error) {
	k := s.Keys(queue)
	keys := []string{k.Active, k.Owners, k.Records, k.Attempts, k.Scheduled, k.Failed, k.Errors, k.Stacks, k.Counters, k.Timings, k.Results, k.SchedKeys, k.JobKeys, k.Stops, k.Canceled,
		k.Limits, k.LimitState, k.Wake}
	mode, due := "fail", int64(0)
	if f.Retry {
		mode, due = "retry", f.Due.UnixMilli()
	}
	n, err := scriptFail.Run(ctx, s.rdb, keys, s.nowMs(), worker, f.ID, mode, due, f.Error, f.Stack,
		leaseStart(f.Started), k.SchedChannel, k.DoneChannel, s.MaxFailed, s.FailedAge.Milliseconds()).Int()
	return FailOutcome(n), err
}

// HandBack returns the leases a worker holds to their lanes at once, ahead of later
// arrivals and without spending an attempt (graceful shutdown). A lease the worker no
// longer holds is left alone.
func (s *Store) HandBack(ctx context.Context, queue, worker string, leases []Lease) (int, error) {
	moved := 0
	for len(leases) > 0 {
		part := leases[:min(len(leases), handBackChunk)]
		leases = leases[len(part):]
		n, _, err := s.requeueActive(ctx, queue, worker, "handback", "", part)
		moved += n
		if err != nil {
			return moved, err
		}
	}
	return moved, nil
}

// ReclaimExpired moves jobs whose lease ended before now back to their lanes,
// spending an attempt. Safe to run from every process at once. It returns how many
// it moved and the earliest remaining lease deadline (zero if none).
func (s *Store) ReclaimExpired(ctx context.Context, queue, reason string) (int, time.Time, error) {
	return s.requeueActive(ctx, queue, "", "expired", reason, nil)
}

func (s *Store) requeueActive(ctx context.Context, queue, worker, mode, reason string, leases []Lease) (int, time.Time, error) {
	k := s.Keys(queue)
	res, err := s.withLanes(ctx, queue, func(laneKeys, members []string) ([]any, error) {
		keys := append([]string{k.Active, k.Owners, k.Index, k.Wake, k.Attempts, k.Errors, k.Records, k.Stacks, k.Results,
			k.Timings, k.SchedKeys, k.JobKeys, k.Stops, k.Canceled, k.Ready, k.Limits, k.LimitState}, laneKeys...)
		args := make([]any, 0, 6+len(members)+2*len(leases))
		args = append(args, s.leaseClock(), worker, mode, reason, len(members))
		for _, m := range members {
			args = append(args, m)
		}
		args = append(args, k.DoneChannel)
		for _, l := range leases {
			args = append(args, l.ID, leaseStart(l.Start))
		}
		return scriptRequeueActive.Run(ctx, s.rdb, keys, args...).Slice()
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	return int(toInt(res[1])), msTime(res[2]), nil
}

// RenewLeases extends, to lease from Redis' now, the leases worker still holds; it
// returns the leases it no longer holds (taken back, even if the worker holds a newer
// lease of the same job), and those of held jobs asked to stop (read in the same
// script, so a stop whose notice was missed is still seen).
func (s *Store) RenewLeases(ctx context.Context, queue, worker string, leases []Lease, lease time.Duration) (lost, stop []Lease, err error) {
	if len(leases) == 0 {
		return nil, nil, nil
	}
	k := s.Keys(queue)
	args := make([]any, 0, 3+2*len(leases))
	args = append(args, s.leaseClock(), lease.Milliseconds(), worker)
	for _, l := range leases {
		args = append(args, l.ID, leaseStart(l.Start))
	}
	res, err := scriptRenew.Run(ctx, s.rdb, []string{k.Active, k.Owners, k.Stops}, args...).Slice()
	if err != nil {
		return nil, nil, err
	}
	pick := func(v any) []Lease {
		var out []Lease
		xs, _ := v.([]any)
		for _, x := range xs {
			if i := int(toInt(x)) - 1; i >= 0 && i < len(leases) {
				out = append(out, leases[i])
			}
		}
		return out
	}
	if len(res) < 2 {
		return nil, nil, fmt.Errorf("store: renew answered %v", res)
	}
	return pick(res[0]), pick(res[1]), nil
}

// Promote moves up to limit due scheduled jobs into their lanes; it returns how many
// it moved and the next due time (zero if none).
func (s *Store) Promote(ctx context.Context, queue string, limit int) (int, time.Time, error) {
	k := s.Keys(queue)
	res, err := s.withLanes(ctx, queue, func(laneKeys, members []string) ([]any, error) {
		keys := append([]string{k.Scheduled, k.Records, k.Index, k.Wake}, laneKeys...)
		args := make([]any, 0, 3+len(members))
		args = append(args, s.nowMs(), limit, len(members))
		for _, m := range members {
			args = append(args, m)
		}
		return scriptPromote.Run(ctx, s.rdb, keys, args...).Slice()
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	return int(toInt(res[1])), msTime(res[2]), nil
}
