package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/ranking/fairshare"
	"github.com/redis/go-redis/v9"
)

// A fleet-wide limit applies to one group of a queue's jobs (docs/limits.md): a task's,
// each fair key's alike, or the whole queue's. fetch.lua enforces them; the scripts
// that end a lease free the slots (lib.lua, MARK).

func limitField(l job.Limit) (string, error) {
	switch l.Scope {
	case job.ScopeTask:
		if err := job.ValidateTaskName(l.Task); err != nil {
			return "", err
		}
		return "t:" + l.Task, nil
	case job.ScopeKey:
		return "k", nil
	case job.ScopeQueue:
		return "q", nil
	}
	return "", fmt.Errorf("%w: %q", job.ErrBadLimitScope, l.Scope)
}

// encode is the stored setting: "cap|rate per s|burst|spec|src" (lib.lua, limit_setting).
func encodeLimit(l job.Limit, src string) (string, error) {
	if l.MaxRunning != 0 {
		if err := job.CheckMaxRunning(l.MaxRunning); err != nil {
			return "", err
		}
	}
	if err := job.CheckRate(l.Rate); err != nil {
		return "", err
	}
	if l.MaxRunning == 0 && l.Rate.IsZero() {
		return "", nil
	}
	most, rate, burst := "", "", ""
	if l.MaxRunning > 0 {
		most = strconv.Itoa(l.MaxRunning)
	}
	if !l.Rate.IsZero() {
		rate = strconv.FormatFloat(l.Rate.PerSecond(), 'g', 17, 64)
		burst = strconv.Itoa(l.Rate.Burst)
	}
	spec := strings.ReplaceAll(l.Rate.String(), "|", "")
	return most + "|" + rate + "|" + burst + "|" + spec + "|" + src, nil
}

// SetLimit sets (or, with neither a cap nor a rate, clears) one of queue's limits, as
// an operator: it wins over the tasks' declarations. Jobs already running when a
// limit is set were not counted by it; they run on, and the limit counts from the
// jobs fetched after it.
func (s *Store) SetLimit(ctx context.Context, queue string, l job.Limit) error {
	_, err := s.configLimit(ctx, queue, l, "set")
	return err
}

// DeclareLimit stores a task's declared limit (RateLimit, MaxRunning on its NewTask),
// unless an operator set that task's limit; a declaration with neither clears an
// earlier declaration. It reports whether the setting changed.
func (s *Store) DeclareLimit(ctx context.Context, queue string, l job.Limit) (bool, error) {
	return s.configLimit(ctx, queue, l, "declare")
}

func (s *Store) configLimit(ctx context.Context, queue string, l job.Limit, mode string) (bool, error) {
	if err := job.ValidateQueueName(queue); err != nil {
		return false, err
	}
	f, err := limitField(l)
	if err != nil {
		return false, err
	}
	src := "s"
	if mode == "declare" {
		src = "d"
	}
	v, err := encodeLimit(l, src)
	if err != nil {
		return false, err
	}
	k := s.Keys(queue)
	n, err := scriptLimitConfig.Run(ctx, s.rdb, []string{k.Limits, k.Rank, k.Idle}, f, v, mode).Int()
	return n == 1, err
}

// Limits lists queue's limits with their use: the queue's, then each task's by name,
// then the per-key setting and the keys that have jobs running under it.
func (s *Store) Limits(ctx context.Context, queue string) ([]job.LimitUse, error) {
	if err := job.ValidateQueueName(queue); err != nil {
		return nil, err
	}
	k := s.Keys(queue)
	pipe := s.rdb.Pipeline()
	cfg := pipe.HGetAll(ctx, k.Limits)
	st := pipe.HGetAll(ctx, k.LimitState)
	tm := pipe.Time(ctx)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	now := tm.Val().UnixMilli()
	if s.injected { // the fetch's clock, which the buckets are stamped by
		now = s.nowMs()
	}
	state := st.Val()
	use := func(group string, l job.Limit, key string) job.LimitUse {
		u := job.LimitUse{Limit: l, Key: key}
		u.Running, _ = strconv.Atoi(state["r:"+group])
		if !l.Rate.IsZero() {
			u.Tokens = float64(l.Rate.Burst)
			tk, at, ok := strings.Cut(state["b:"+group], "|")
			t, err1 := strconv.ParseFloat(tk, 64)
			a, err2 := strconv.ParseInt(at, 10, 64)
			if ok && err1 == nil && err2 == nil && !math.IsNaN(t) {
				u.Tokens = math.Min(float64(l.Rate.Burst), t+float64(max(now-a, 0))*l.Rate.PerSecond()/1000)
			}
		}
		return u
	}
	var out []job.LimitUse
	fields := make([]string, 0, len(cfg.Val()))
	for f := range cfg.Val() {
		fields = append(fields, f)
	}
	sort.Slice(fields, func(i, j int) bool { // the queue, tasks by name, keys
		rank := func(f string) int { return map[string]int{"q": 0, "k": 2}[f] + boolInt(strings.HasPrefix(f, "t:")) }
		if rank(fields[i]) != rank(fields[j]) {
			return rank(fields[i]) < rank(fields[j])
		}
		return fields[i] < fields[j]
	})
	for _, f := range fields {
		l, ok := decodeLimit(f, cfg.Val()[f])
		if !ok {
			continue
		}
		switch l.Scope {
		case job.ScopeKey:
			out = append(out, job.LimitUse{Limit: l})
			var keys []string // keys with jobs running, or with a bucket not full
			seen := map[string]bool{}
			for g := range state {
				key, ok := strings.CutPrefix(g, "r:k:")
				if !ok {
					key, ok = strings.CutPrefix(g, "b:k:")
				}
				if ok && !seen[key] {
					seen[key] = true
					keys = append(keys, key)
				}
			}
			sort.Strings(keys)
			for _, key := range keys {
				name := key
				if key == "" { // the key of jobs without one: named, never "" (the setting's row)
					name = fairshare.DefaultKeyName
				}
				out = append(out, use("k:"+key, l, name))
			}
		default:
			out = append(out, use(f, l, ""))
		}
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// decodeLimit reads a stored setting back (false for a damaged one).
func decodeLimit(field, v string) (job.Limit, bool) {
	parts := strings.Split(v, "|")
	if len(parts) != 5 {
		return job.Limit{}, false
	}
	var l job.Limit
	switch {
	case field == "q":
		l.Scope = job.ScopeQueue
	case field == "k":
		l.Scope = job.ScopeKey
	case strings.HasPrefix(field, "t:"):
		l.Scope, l.Task = job.ScopeTask, field[2:]
	default:
		return job.Limit{}, false
	}
	l.MaxRunning, _ = strconv.Atoi(parts[0])
	if parts[3] != "" {
		r, err := job.ParseRate(parts[3])
		if err != nil {
			return job.Limit{}, false
		}
		l.Rate = r
	}
	l.Declared = parts[4] == "d"
	return l, l.MaxRunning > 0 || !l.Rate.IsZero()
}

// HasLimits reports whether queue has any fleet-wide limit.
func (s *Store) HasLimits(ctx context.Context, queue string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.Keys(queue).Limits).Result()
	return n == 1, err
}

// LimitsInUse reports whether queue has limits or state left by them (counts of jobs
// still running, buckets not full yet): whether RecountLimits has anything to do.
func (s *Store) LimitsInUse(ctx context.Context, queue string) (bool, error) {
	k := s.Keys(queue)
	n, err := s.rdb.Exists(ctx, k.Limits, k.LimitState).Result()
	return n > 0, err
}

// RecountLimits sets every group's running count of queue to what its owner entries
// say (the limit marks of the leases held now), in one script run: a repair for counts
// that a lost owner entry (an operator's DEL, a restore) left behind, so a cap can never
// stay full for good. O(running jobs).
func (s *Store) RecountLimits(ctx context.Context, queue string) error {
	k := s.Keys(queue)
	return scriptLimitRecount.Run(ctx, s.rdb, []string{k.Owners, k.LimitState, k.Limits}, s.leaseClock()).Err()
}
