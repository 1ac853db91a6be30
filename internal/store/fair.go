package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/ranking/fairshare"
	"github.com/redis/go-redis/v9"
)

// DefaultFairKey is how the key of jobs without a fair key is named where a name must
// be shown ("" is the key itself).
const DefaultFairKey = fairshare.DefaultKeyName

// checkFairKey validates a key named by an operator: a job's fair key, or "" (or
// DefaultFairKey) for the default key. It returns the key as stored.
func checkFairKey(key string) (string, error) {
	if key == "" || key == DefaultFairKey {
		return "", nil
	}
	if err := job.ValidateFairKey(key); err != nil {
		return "", err
	}
	return key, nil
}

// SetFairMode switches queue's fairness between keys. Workers follow from their next
// fetch; producers place new jobs by it within modelTTL.
func (s *Store) SetFairMode(ctx context.Context, queue string, mode fairshare.Mode) error {
	if _, err := fairshare.ParseMode(string(mode)); err != nil {
		return err
	}
	k := s.Keys(queue)
	var err error
	if mode == fairshare.ModeOff {
		err = s.rdb.HDel(ctx, k.Rank, "fair").Err()
	} else {
		err = s.rdb.HSet(ctx, k.Rank, "fair", string(mode)).Err()
	}
	s.forgetModels(queue)
	return err
}

// FairMode reads queue's fairness mode.
func (s *Store) FairMode(ctx context.Context, queue string) (fairshare.Mode, error) {
	v, err := s.rdb.HGet(ctx, s.Keys(queue).Rank, "fair").Result()
	if errors.Is(err, redis.Nil) {
		return fairshare.ModeOff, nil
	}
	if err != nil {
		return "", err
	}
	if m, err := fairshare.ParseMode(v); err == nil {
		return m, nil
	}
	return fairshare.ModeOff, nil // a damaged entry reads as the scripts read it
}

// forgetModels drops the store's copy of queue's settings, so that its next enqueue
// reads them (a change made through this store applies to its own jobs at once).
func (s *Store) forgetModels(queue string) {
	s.mu.Lock()
	delete(s.modelCaches, queue)
	s.mu.Unlock()
}

func (s *Store) fairConfig(ctx context.Context, queue, kind, key, value string) error {
	k := s.Keys(queue)
	err := scriptFairConfig.Run(ctx, s.rdb, []string{k.FairConfig, k.FairTags, k.FairVirtual}, kind, key, value).Err()
	s.forgetModels(queue)
	s.mu.Lock()
	delete(s.lateness, queue+"\x1f"+key)
	s.mu.Unlock()
	return err
}

// SetFairWeight sets a key's weight in queue (fairshare.CheckWeight; 1 is the default
// and is stored as no entry). key "" (or DefaultFairKey) is the default key.
func (s *Store) SetFairWeight(ctx context.Context, queue, key string, w float64) error {
	key, err := checkFairKey(key)
	if err != nil {
		return err
	}
	if err := fairshare.CheckWeight(w); err != nil {
		return fmt.Errorf("fair key %q: %w", key, err)
	}
	v := ""
	if w != fairshare.DefaultWeight {
		v = strconv.FormatFloat(w, 'g', -1, 64)
	}
	return s.fairConfig(ctx, queue, "w", key, v)
}

// MaxFairLateness bounds a key's default SkipIfLate.
const MaxFairLateness = job.MaxHorizon

// SetFairLateness sets the SkipIfLate that jobs of key get when they have none of their
// own (celery-ranch's expiry); 0 removes it.
func (s *Store) SetFairLateness(ctx context.Context, queue, key string, d time.Duration) error {
	key, err := checkFairKey(key)
	if err != nil {
		return err
	}
	if d < 0 || d > MaxFairLateness {
		return fmt.Errorf("%w: fair key %q: lateness %s must be from 0 to %s", fairshare.ErrBadSetting, key, d, MaxFairLateness)
	}
	v := ""
	if d > 0 {
		v = strconv.FormatInt(d.Milliseconds(), 10)
	}
	return s.fairConfig(ctx, queue, "x", key, v)
}

// MaxFairTags bounds the tags of one key, and MaxFairTagLen each "name=value".
const (
	MaxFairTags   = 16
	MaxFairTagLen = 128
)

// SetFairTags replaces a key's tags (celery-ranch's add_tag): name → value; none
// removes them. Names and values are printable text without "=", at most MaxFairTagLen
// bytes together.
func (s *Store) SetFairTags(ctx context.Context, queue, key string, tags map[string]string) error {
	key, err := checkFairKey(key)
	if err != nil {
		return err
	}
	if len(tags) > MaxFairTags {
		return fmt.Errorf("%w: fair key %q: %d tags, at most %d", fairshare.ErrBadSetting, key, len(tags), MaxFairTags)
	}
	names := make([]string, 0, len(tags))
	for n, v := range tags {
		if err := checkTag(n, v); err != nil {
			return fmt.Errorf("fair key %q: %w", key, err)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + tags[n]
	}
	return s.fairConfig(ctx, queue, "g", key, strings.Join(parts, placeSep))
}

func checkTag(name, value string) error {
	t := name + "=" + value
	switch {
	case name == "":
		return fmt.Errorf("%w: a tag needs a name (value %q)", fairshare.ErrBadSetting, value)
	case strings.Contains(name, "="):
		return fmt.Errorf("%w: tag name %q holds \"=\"", fairshare.ErrBadSetting, name)
	case len(t) > MaxFairTagLen:
		return fmt.Errorf("%w: tag %q is %d bytes, at most %d", fairshare.ErrBadSetting, t, len(t), MaxFairTagLen)
	}
	if err := job.ValidateFairKey(t); err != nil { // the same printable text as a key
		return fmt.Errorf("%w: tag %q must be UTF-8 without control or format characters", fairshare.ErrBadSetting, t)
	}
	return nil
}

// fairLateness is key's default lateness in queue, from a copy at most modelTTL old.
func (s *Store) fairLateness(ctx context.Context, queue, key string) (time.Duration, error) {
	ck := queue + "\x1f" + key
	now := s.now()
	s.mu.Lock()
	e, ok := s.lateness[ck]
	s.mu.Unlock()
	if ok && now.Sub(e.read) < modelTTL && !now.Before(e.read) {
		return e.d, nil
	}
	v, err := s.rdb.HGet(ctx, s.Keys(queue).FairConfig, "x:"+key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	d := time.Duration(0)
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 && ms <= MaxFairLateness.Milliseconds() {
		d = time.Duration(ms) * time.Millisecond
	}
	s.mu.Lock()
	if s.lateness == nil || len(s.lateness) > 10000 { // a copy, not a second key space
		s.lateness = map[string]lateEntry{}
	}
	s.lateness[ck] = lateEntry{read: now, d: d}
	s.mu.Unlock()
	return d, nil
}

type lateEntry struct {
	read time.Time
	d    time.Duration
}

// FairKeys lists queue's keys with pending jobs in fair sets, most pending first,
// from offset, and how many keys have pending jobs.
func (s *Store) FairKeys(ctx context.Context, queue string, offset, limit int) ([]fairshare.KeyInfo, int64, error) {
	// a negative rank counts from the end in Redis: no page starts before the first key
	offset, limit = max(offset, 0), max(limit, 0)
	k := s.Keys(queue)
	pipe := s.rdb.Pipeline()
	page := pipe.ZRevRangeWithScores(ctx, k.FairCount, int64(offset), int64(offset+limit-1))
	total := pipe.ZCard(ctx, k.FairCount)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, err
	}
	if limit == 0 {
		return nil, total.Val(), nil
	}
	keys := make([]string, 0, len(page.Val()))
	for _, z := range page.Val() {
		keys = append(keys, z.Member.(string))
	}
	out, err := s.fairInfos(ctx, queue, keys)
	if err != nil {
		return nil, 0, err
	}
	return out, total.Val(), nil
}

// FairKey is one key's view (pending 0 when it has no pending job).
func (s *Store) FairKey(ctx context.Context, queue, key string) (fairshare.KeyInfo, error) {
	key, err := checkFairKey(key)
	if err != nil {
		return fairshare.KeyInfo{}, err
	}
	out, err := s.fairInfos(ctx, queue, []string{key})
	if err != nil {
		return fairshare.KeyInfo{}, err
	}
	return out[0], nil
}

// FairKeysTagged lists the keys of queue tagged name=value (celery-ranch's
// get_tagged_clients), in byte order, at most limit.
func (s *Store) FairKeysTagged(ctx context.Context, queue, name, value string, limit int) ([]string, error) {
	if err := checkTag(name, value); err != nil {
		return nil, err
	}
	t := name + "=" + value + placeSep
	ms, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.Keys(queue).FairTags, Start: "[" + t, Stop: "(" + name + "=" + value + " ",
		ByLex: true, Count: int64(limit)}).Result()
	if err != nil {
		return nil, err
	}
	for i, m := range ms {
		ms[i] = strings.TrimPrefix(m, t)
	}
	return ms, nil
}

// fairInfos reads the view of keys: pending counts, configuration and use in one
// round trip, and running jobs from the owners (O(active), once per page).
func (s *Store) fairInfos(ctx context.Context, queue string, keys []string) ([]fairshare.KeyInfo, error) {
	k := s.Keys(queue)
	pipe := s.rdb.Pipeline()
	pend := make([]*redis.FloatCmd, len(keys))
	cfg := make([]*redis.SliceCmd, len(keys))
	use := make([]*redis.SliceCmd, len(keys))
	for i, key := range keys {
		pend[i] = pipe.ZScore(ctx, k.FairCount, key)
		cfg[i] = pipe.HMGet(ctx, k.FairConfig, "w:"+key, "x:"+key, "g:"+key)
		use[i] = pipe.HMGet(ctx, k.FairUse, "s:"+key, "u:"+key, "u")
	}
	owners := pipe.HVals(ctx, k.Owners)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	running := map[string]int{}
	for _, o := range owners.Val() {
		parts := strings.SplitN(o, "|", 4)
		if len(parts) == 4 {
			if _, key, ref := splitPlace(parts[3]); ref != "" {
				running[key]++
			}
		}
	}
	now := s.now()
	out := make([]fairshare.KeyInfo, len(keys))
	for i, key := range keys {
		fi := fairshare.KeyInfo{Key: key, Weight: fairshare.DefaultWeight, Running: running[key]}
		fi.Pending = int64(pend[i].Val())
		c := cfg[i].Val()
		if w, err := strconv.ParseFloat(str(c[0]), 64); err == nil && fairshare.CheckWeight(w) == nil {
			fi.Weight = w
		}
		if ms, err := strconv.ParseInt(str(c[1]), 10, 64); err == nil && ms > 0 && ms <= MaxFairLateness.Milliseconds() {
			fi.LateBy = time.Duration(ms) * time.Millisecond
		}
		if g := str(c[2]); g != "" {
			fi.Tags = map[string]string{}
			for _, t := range strings.Split(g, placeSep) {
				n, v, _ := strings.Cut(t, "=")
				fi.Tags[n] = v
			}
		}
		u := use[i].Val()
		if ms, err := strconv.ParseInt(str(u[0]), 10, 64); err == nil && ms > 0 && ms < maxScoreMs {
			fi.LastServed = time.UnixMilli(ms).UTC()
		}
		mine, all := decayedUse(str(u[1]), now), decayedUse(str(u[2]), now)
		fi.UsedMs = mine
		if all > 0 {
			fi.Share = math.Min(mine/all, 1)
		}
		out[i] = fi
	}
	return out, nil
}

// decayedUse reads a use entry "at ms|ms" (ack.lua) decayed to now.
func decayedUse(e string, now time.Time) float64 {
	at, v, ok := strings.Cut(e, "|")
	if !ok {
		return 0
	}
	a, err1 := strconv.ParseInt(at, 10, 64)
	x, err2 := strconv.ParseFloat(v, 64)
	if err1 != nil || err2 != nil || !(x >= 0) || math.IsInf(x, 1) {
		return 0
	}
	dt := max(now.UnixMilli()-a, 0)
	return x * math.Exp(-float64(dt)/60000)
}
