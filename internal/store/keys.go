package store

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Keys are the Redis keys (and pub/sub channels) of one queue.
type Keys struct {
	Queue     string
	prefix    string // "<ns>:{<queue>}:"
	Index     string // zset: lane member -> lane offset + head score
	Records   string // hash: id -> lane member "\n" record
	Attempts  string // hash: id -> failed attempts so far (sparse)
	Errors    string // hash: id -> last error (sparse)
	Stacks    string // hash: id -> last panic stack (sparse)
	Results   string // hash: id -> msgpack result (sparse)
	Timings   string // hash: id -> "start ms|finish ms" of ended jobs
	Active    string // zset: id -> lease deadline ms
	Owners    string // hash: id -> "worker|start ms|lane score|lane member"
	Scheduled string // zset: id -> due ms
	Failed    string // zset: id -> failed at ms
	Succeeded string // zset: id -> expiry ms (finish + retention)
	Canceled  string // zset: id -> canceled at ms (kept CanceledAge, at most MaxCanceled)
	Wake      string // list: at most one token while work may be waiting
	Idle      string // zset: "worker|lease ms" -> idle until ms (workers blocked, waiting)
	Ready     string // list: jobs handed to idle workers: "id|handed ms|lane score|record"
	Paused    string // string: exists while the queue is paused
	Counters  string // hash: succeeded, failed, retried
	Activity  string // hash: "m<minute mod 60>" -> "minute|succeeded|failed|retried|wait Σms|wait n|wait max ms"
	Rank      string // hash: mode, rule, w, alpha (the learned order's settings)
	TaskStats string // hash: task (and "*") -> "count|mean ms|variance" of run times; "p:<task>" -> prior ms
	Window    string // list: recent "task|predicted|ran|enqueued ms|started ms" samples
	Models    string // hash: task -> "cost name|n|Σx|Σy|Σx²|Σxy", log run time on log1p(cost)
	SchedKeys string // hash: schedule key -> id of the job enqueued under it
	JobKeys   string // hash: id of a keyed job -> its schedule key
	Stops     string // hash: id of a running job asked to stop -> asked at ms

	// Fleet-wide limits (lib.lua, MARK; docs/limits.md)
	Limits     string // hash: "t:<task>", "k" (every fair key), "q" -> "cap|rate per s|burst|spec"; exists only while a limit is set
	LimitState string // hash: "r:<group>" jobs counted running, "b:<group>" "tokens|at ms"

	// Fair share (lib.lua, fair_add); per band p also "fj:<p>", "fk:<p>", "fz:<p>"
	FairVirtual string // hash: "v:<p>" virtual time of band p, "c:<p>" its visit under way, "cfg" keys configured, "sw" sweep cursor
	FairCount   string // zset: fair key -> its pending jobs in fair sets (all bands)
	FairConfig  string // hash: "w:<key>" weight, "x:<key>" default SkipIfLate ms, "g:<key>" tags
	FairUse     string // hash: "s:<key>" last served ms, "u:<key>" and "u" "at ms|worker ms" decayed over a minute
	FairTags    string // zset, by bytes: "<name>=<value>\x1f<key>" (keys by tag)

	DoneChannel  string // pub/sub: "s id id ...", "f id", "c id" as jobs end
	SchedChannel string // pub/sub: due ms of a job that became the earliest scheduled
	StopChannel  string // pub/sub: id of a running job asked to stop
}

// KeysFor returns the keys of queue in namespace ns.
func KeysFor(ns, queue string) Keys {
	p := ns + ":{" + queue + "}:"
	return Keys{
		Queue: queue, prefix: p,
		Index: p + "idx", Records: p + "j", Attempts: p + "a",
		Errors: p + "err", Stacks: p + "stk", Results: p + "res", Timings: p + "fin",
		Active: p + "act", Owners: p + "own", Scheduled: p + "sch", Failed: p + "fail",
		Succeeded: p + "done", Wake: p + "wake", Idle: p + "idle", Ready: p + "ready", Paused: p + "paused", Counters: p + "stat", Activity: p + "min",
		Rank: p + "rank", TaskStats: p + "tstat", Window: p + "qwin", Models: p + "cmodel", SchedKeys: p + "skey", JobKeys: p + "jkey",
		Stops: p + "stop", Canceled: p + "canc", Limits: p + "lim", LimitState: p + "lst",
		FairVirtual: p + "fv", FairCount: p + "fn", FairConfig: p + "fcfg", FairUse: p + "fuse", FairTags: p + "ftag",
		DoneChannel: p + "ev:done", SchedChannel: p + "ev:sched", StopChannel: p + "ev:stop",
	}
}

// Lane returns the key of the lane with the given member, or of a fair-share key named
// as a lane (FairRef and its companions: "<p>|fk", "<p>|fz", "|fv", "|fn", "|fcfg", "|fuse").
func (k Keys) Lane(member string) string {
	if len(member) > 1 && member[1] == '|' {
		p := member[:1]
		switch member[2:] {
		case "fair":
			return k.prefix + "fj:" + p
		case "fk", "fz":
			return k.prefix + member[2:] + ":" + p
		}
	}
	if len(member) > 1 && member[0] == '|' {
		return k.prefix + member[1:]
	}
	return k.prefix + "l:" + member
}

// FairRef is the lane-index member of priority band p's fair set: "<p>|fair".
func FairRef(priority int) string { return strconv.Itoa(priority) + "|fair" }

// isFairRef reports whether a lane-index member is a band's fair set.
func isFairRef(m string) bool { return len(m) == 6 && m[1:] == "|fair" }

// fairCompanions are the lane-list members a script that meets fair set ref needs: the
// set, its band's key sets, and the queue's fair hashes.
func fairCompanions(ref string) []string {
	p := ref[:1]
	return []string{ref, p + "|fk", p + "|fz", "|fv", "|fn", "|fcfg", "|fuse"}
}

// fairMembers is the lane list of fair sets refs and their companions, without repeats.
func fairMembers(refs []string) []string {
	var out []string
	for _, ref := range refs {
		for _, m := range fairCompanions(ref) {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// placeSep separates the fields of a place (a fair key holds no control character).
const placeSep = "\x1f"

// FairPlace is the place of a job in a fair set, stored where a lane member would be:
// "<lane>\x1f<key>\x1f<in-key score, 15 digits>". The score orders the key's jobs (its
// arrival in fifo mode; arrival + w × prediction under the learned order).
func FairPlace(lane, key string, score int64) string {
	score = max(0, min(score, 999999999999999))
	return lane + placeSep + key + placeSep + fmt.Sprintf("%015d", score)
}

// splitPlace reads a record's first line: a lane member, or a place (FairPlace); for a
// place, the lane, the key and the band's fair set.
func splitPlace(line string) (lane, key, ref string) {
	l, rest, ok := strings.Cut(line, placeSep)
	if !ok {
		return line, "", ""
	}
	key, _, _ = strings.Cut(rest, placeSep)
	if l == "" {
		return l, key, ""
	}
	return l, key, l[:1] + "|fair"
}

// LaneMember names the lane of a task at a priority: "<priority>:<task>".
func LaneMember(priority int, task string) string {
	return strconv.Itoa(priority) + ":" + task
}

// EstimateLane names the lane of a job with its own run-time estimate: its task's lane
// plus a size bucket, " =b" with b = round(8·log2(ms)), so that jobs of one lane have
// estimates within 9% of each other and stay in arrival order. The scripts predict
// such a lane as 2^(b/8) ms; task names cannot hold a space, so the suffix is unambiguous.
func EstimateLane(priority int, task string, estimate time.Duration) string {
	ms := max(float64(estimate)/float64(time.Millisecond), 0.001)
	return LaneMember(priority, task) + " =" + strconv.Itoa(int(math.Round(8*math.Log2(ms))))
}

// LaneEstimate is the run-time estimate a lane member carries (within 9%), or 0.
func LaneEstimate(m string) time.Duration {
	i := strings.Index(m, " =")
	if i < 0 {
		return 0
	}
	b, err := strconv.Atoi(m[i+2:])
	if err != nil {
		return 0
	}
	ns := math.Pow(2, float64(b)/8) * float64(time.Millisecond)
	if !(ns < math.MaxInt64) { // a damaged bucket past any Duration: unknown, not negative
		return 0
	}
	return time.Duration(ns)
}

// ParseLaneMember splits a lane member into priority and task.
func ParseLaneMember(m string) (priority int, task string, err error) {
	p, t, ok := strings.Cut(m, ":")
	if !ok || len(p) != 1 || p[0] < '0' || p[0] > '9' {
		return 0, "", fmt.Errorf("store: bad lane member %q", m)
	}
	if i := strings.IndexByte(t, ' '); i >= 0 {
		t = t[:i]
	}
	return int(p[0] - '0'), t, nil
}

// Global keys, not tied to one queue.
func queuesKey(ns string) string     { return ns + ":queues" }
func workersKey(ns string) string    { return ns + ":workers" }
func workerKey(ns, id string) string { return ns + ":worker:" + id }

// GlobalKeys are the keys of the namespace that belong to no queue: on a Redis Cluster
// each lives on whichever master its slot maps to (see docs/operations.md).
func (s *Store) GlobalKeys() []string {
	return []string{queuesKey(s.ns), workersKey(s.ns), tasksKey(s.ns), beatEntriesKey(s.ns)}
}

// WorkerKeys are worker's own keys: its heartbeat record and its poke list.
func (s *Store) WorkerKeys(worker string) []string {
	return []string{workerKey(s.ns, worker), s.PokeKey(worker)}
}

// PokeKey is a worker's own wake-up list: the worker pushes to it to end its own
// blocking wait (a slot freed on a queue it had stopped listening to, or Stop).
func (s *Store) PokeKey(worker string) string { return s.ns + ":poke:" + worker }

// cancelKey is a list in queue's slot that ends the BLPOP of one cluster wait (its
// id) of worker on queue (see waitCluster).
func (s *Store) cancelKey(queue, worker, wait string) string {
	return s.Keys(queue).prefix + "poke:" + worker + ":" + wait
}

// pokeCancelKey is a list in the slot of worker's poke list that ends the BLPOP of one
// cluster wait (its id) on that list. The poke list's name has no hash tag of its own
// (unless the namespace or worker id brings one): its whole name, as the tag of the
// new key, puts that key in the same slot. A name with braces but no tag cannot be
// matched so: the poke list itself is returned (its BLPOP then skips other waits'
// tokens, see waitCluster).
func (s *Store) pokeCancelKey(worker, wait string) string {
	k := s.PokeKey(worker)
	if i := strings.IndexByte(k, '{'); i >= 0 {
		if j := strings.IndexByte(k[i+1:], '}'); j > 0 {
			return k + ":end:" + wait // the key's own tag decides its slot
		}
	}
	if strings.ContainsAny(k, "{}") {
		return k
	}
	return k + ":{" + k + "}:end:" + wait
}

// Beat keys: entries are global (an entry names its queue); an entry's progress lives
// in its queue's hash tag, where its jobs go.
func beatEntriesKey(ns string) string { return ns + ":beat:entries" }

// beatKey is a queue's beat hash: <entry>|last (the entry's progress mark, the latest
// tick done) and <entry>|job (its last job), per entry of the queue.
func beatKey(k Keys) string { return k.prefix + "beat" }

func tasksKey(ns string) string { return ns + ":tasks" }
