package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store runs chronoq's state changes against one Redis (or Redis Cluster).
type Store struct {
	rdb redis.UniversalClient
	ns  string
	now func() time.Time
	// injected: now is a test's or the simulator's clock, which scripts then use for
	// leases too; else leases run on Redis' clock (clock_ms in lib.lua)
	injected bool
	// skew is Redis' clock minus ours (ns), as the last fetch saw it: RedisNow
	skew atomic.Int64

	ackCalls atomic.Uint64
	keys     sync.Map // queue -> Keys

	mu          sync.Mutex
	lanes       map[string]*laneSet  // queue -> the lanes its calls used lately
	lateness    map[string]lateEntry // queue \x1f fair key -> its default lateness, as read
	modelCaches map[string]*modelCache
	// Limits of what is kept for inspection.
	MaxSucceeded int
	MaxFailed    int
	FailedAge    time.Duration
	MaxCanceled  int
	CanceledAge  time.Duration
	// TrimEvery: acknowledgements trim the succeeded set on one call in TrimEvery
	// (default 8); trimming on every call would cost two commands per batch.
	TrimEvery int
}

// New returns a Store on rdb for namespace ns ("" means "chronoq"); now is the clock
// (nil means time.Now), injectable so tests need no sleeps.
func New(rdb redis.UniversalClient, ns string, now func() time.Time) *Store {
	if ns == "" {
		ns = "chronoq"
	}
	injected := now != nil
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, ns: ns, now: now, injected: injected, lanes: map[string]*laneSet{},
		MaxSucceeded: 100_000, MaxFailed: 100_000, FailedAge: 7 * 24 * time.Hour,
		MaxCanceled: 100_000, CanceledAge: 24 * time.Hour, TrimEvery: 8}
}

// Redis is the client the store runs on.
func (s *Store) Redis() redis.UniversalClient { return s.rdb }

// Namespace is the prefix of every key.
func (s *Store) Namespace() string { return s.ns }

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.now() }

// Keys returns the keys of queue (built once per queue: they are on every hot path).
func (s *Store) Keys(queue string) Keys {
	if k, ok := s.keys.Load(queue); ok {
		return k.(Keys)
	}
	k := KeysFor(s.ns, queue)
	s.keys.Store(queue, k)
	return k
}

func (s *Store) nowMs() int64 { return s.now().UnixMilli() }

// leaseClock is the clock argument of the scripts that start or judge leases: ""
// (Redis' own clock), or the injected clock's ms.
func (s *Store) leaseClock() string {
	if !s.injected {
		return ""
	}
	return strconv.FormatInt(s.nowMs(), 10)
}

// RedisNow is Redis' clock as last measured (lease deadlines are set by it): the
// store's clock plus the offset the last fetch observed, good to about half a round
// trip. A worker judges the age of a hand-off by it.
func (s *Store) RedisNow() time.Time { return s.now().Add(time.Duration(s.skew.Load())) }

// observeClock records the offset of Redis' clock (redisMs, read by a script) from
// ours, taking the middle of the call as the moment it was read.
func (s *Store) observeClock(sent, received time.Time, redisMs int64) {
	mid := sent.Add(received.Sub(sent) / 2)
	s.skew.Store(int64(time.UnixMilli(redisMs).Sub(mid)))
}

// Lanes a script may meet are passed in its KEYS (no script builds a key). The store
// keeps, per queue, the lanes its calls used lately and passes those; a script that
// meets a lane missing from the list answers "stale" with the missing members before
// changing anything, and the call is made again with them. So a call's cost follows the
// lanes in use now, never every lane ever used: a lane unused for laneIdle leaves the
// list, and while the list is longer than laneFew a lane a fetch emptied leaves at once.
const (
	laneIdle = 30 * time.Second
	laneFew  = 16
)

// laneSet is the lanes of one queue the store's calls used lately.
type laneSet struct {
	used    map[string]time.Time // member -> last use
	sorted  []string             // the members, sorted; nil when to be rebuilt
	pruneAt time.Time
}

// laneSetOf returns queue's lane set, made on first use; s.mu must be held.
func (s *Store) laneSetOf(queue string) *laneSet {
	ls := s.lanes[queue]
	if ls == nil {
		ls = &laneSet{used: map[string]time.Time{}}
		s.lanes[queue] = ls
	}
	return ls
}

// lanesOf returns the lanes of queue used lately, sorted, dropping those idle too long.
func (s *Store) lanesOf(queue string) []string {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.laneSetOf(queue)
	if now.After(ls.pruneAt) {
		ls.pruneAt = now.Add(time.Second)
		for m, t := range ls.used {
			if now.Sub(t) > laneIdle {
				delete(ls.used, m)
				ls.sorted = nil
			}
		}
	}
	if ls.sorted == nil {
		ls.sorted = make([]string, 0, len(ls.used))
		for m := range ls.used {
			ls.sorted = append(ls.sorted, m)
		}
		sort.Strings(ls.sorted)
	}
	return ls.sorted
}

// useLanes marks members of queue as used now (a script needed them, or a fetch took
// jobs from them).
func (s *Store) useLanes(queue string, members ...string) {
	if len(members) == 0 {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.laneSetOf(queue)
	mark := func(m string) {
		if _, ok := ls.used[m]; !ok {
			ls.sorted = nil
		}
		ls.used[m] = now
	}
	for _, m := range members {
		if _, _, ref := splitPlace(m); ref != "" {
			m = ref
		}
		if isFairRef(m) {
			for _, c := range fairCompanions(m) {
				mark(c)
			}
			continue
		}
		mark(m)
	}
}

// drainedLanes forgets lanes of queue a fetch emptied, once the queue has more than a
// few lanes in use: a lane refilled later costs one stale answer, which only pays when
// the list is long.
func (s *Store) drainedLanes(queue string, members []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.lanes[queue]
	if ls == nil || len(ls.used) <= laneFew {
		return
	}
	for _, m := range members {
		if _, ok := ls.used[m]; ok {
			delete(ls.used, m)
			ls.sorted = nil
		}
		if isFairRef(m) { // its band's key sets go with it; the queue's hashes stay
			delete(ls.used, m[:1]+"|fk")
			delete(ls.used, m[:1]+"|fz")
		}
	}
}

// errStale is returned by a lane-using script call that kept meeting lanes its list
// lacked (lanes appearing faster than the calls learn them).
type errStale struct{ members []string }

func (e errStale) Error() string {
	return fmt.Sprintf("store: lanes keep appearing (last unknown: %v)", e.members)
}

// maxStaleTries bounds how often a call learns missing lanes and is made again; a
// script names every missing lane it can see at once, so one more call is the rule.
const maxStaleTries = 8

// withLanes runs call with the keys and members of the queue's lanes in use, and again
// with the lanes a script answered were missing.
func (s *Store) withLanes(ctx context.Context, queue string, call func(laneKeys, members []string) ([]any, error)) ([]any, error) {
	k := s.Keys(queue)
	var missing []string
	for try := 0; try < maxStaleTries; try++ {
		members := s.lanesOf(queue)
		laneKeys := make([]string, len(members))
		for i, m := range members {
			laneKeys[i] = k.Lane(m)
		}
		res, err := call(laneKeys, members)
		if err != nil {
			return nil, err
		}
		if len(res) >= 2 && res[0] == "stale" {
			missing = missing[:0]
			for _, m := range res[1:] {
				missing = append(missing, toStr(m))
			}
			s.useLanes(queue, missing...)
			continue
		}
		return res, nil
	}
	return nil, errStale{missing}
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

func toStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// msTime turns a script's "" or ms value into a time (zero for "").
func msTime(v any) time.Time {
	s := toStr(v)
	if s == "" {
		return time.Time{}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(f)).UTC()
}

// IsConnError reports whether err is a network-level error (Redis unreachable),
// as opposed to a script or command error.
func IsConnError(err error) bool {
	if err == nil {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return false
	}
	return !errors.Is(err, redis.Nil)
}

// IsNodeError reports whether err says the node itself is away or not serving (a
// connection error, a call past its deadline, a cluster or loading state), rather
// than something about the command or the data.
func IsNodeError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, ErrNodeSlow) || errors.Is(err, context.DeadlineExceeded) || IsConnError(err) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"CLUSTERDOWN", "LOADING", "TRYAGAIN", "MASTERDOWN", "READONLY"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

type redisZ = redis.Z

var errRedisNil = redis.Nil

func redisZRangeArgs(key string, from, to time.Time, limit int) redis.ZRangeArgs {
	return redis.ZRangeArgs{Key: key, ByScore: true, Start: strconv.FormatInt(from.UnixMilli(), 10),
		Stop: strconv.FormatInt(to.UnixMilli(), 10), Count: int64(limit)}
}
