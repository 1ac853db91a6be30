package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/clusterfault"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// TestRedisCluster runs the conformance suite on a 3-master Redis Cluster started by
// the test itself. It checks the promise that every key of a queue carries the hash
// tag {queue}, so that each script touches one slot and the same code runs on a
// single Redis and on a cluster. It needs redis-server and redis-cli (Debian's
// redis-tools, which redis-server depends on); CHRONOQ_TEST_CLUSTER=0 skips it.
func TestRedisCluster(t *testing.T) {
	if os.Getenv("CHRONOQ_TEST_CLUSTER") == "0" {
		t.Skip("CHRONOQ_TEST_CLUSTER=0")
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not found: the cluster suite needs it to form the cluster")
	}
	cluster := startCluster(t, 3)
	addrs := cluster.Addrs
	backend := func(t *testing.T) redis.UniversalClient {
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
		t.Cleanup(func() { _ = rdb.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var masters atomic.Int32
		err := rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			masters.Add(1)
			return m.FlushAll(ctx).Err()
		})
		if err != nil {
			t.Fatalf("cluster: flush: %v", err)
		}
		if n := masters.Load(); n != int32(len(addrs)) {
			t.Fatalf("cluster: client sees %d masters, want %d", n, len(addrs))
		}
		return rdb
	}
	Run(t, backend)
	// What the shared suite cannot see on a single node: where the keys land, and the
	// worker's and the beat's own commands across several queues and masters.
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, rdb *redis.ClusterClient)
	}{
		{"KeysOnOneSlotPerQueue", testClusterKeyPlacement},
		{"WaitAcrossMasters", testClusterWaitAcross},
		{"BeatAcrossMasters", testClusterBeat},
		{"WorkerOneQueue", testClusterWorkerOneQueue},
		{"WorkerQueuesOnTwoMasters", testClusterWorkerTwoQueues},
		{"WorkerAtItsQueueCap", testClusterCapped},
		{"IdleWorkerDoesNotSpin", testClusterNoSpin},
		{"WaitReportsNodeErrors", testClusterWaitError},
	} {
		t.Run("Cluster/"+tc.name, func(t *testing.T) { tc.fn(t, backend(t).(*redis.ClusterClient)) })
	}
	// last: it pauses, kills and restarts a master
	t.Run("Cluster/OneMasterFaulty", func(t *testing.T) { testClusterFault(t, cluster, backend(t).(*redis.ClusterClient)) })
}

// testClusterFault runs the cluster-fault scenario (internal/clusterfault): one
// worker serves a queue on a healthy master and one on a master that is paused for
// 3 s, then killed for 3 s and started again, while jobs are enqueued on both. No job
// runs twice or fails, the healthy queue's jobs never wait on the faulty master (p99
// within 50 ms here; `go run ./bench cluster_fault` measures the 10 ms target), and
// the faulty queue is served again within a second of its master's return.
func testClusterFault(t *testing.T, cl *redistest.Cluster, rdb *redis.ClusterClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := clusterfault.RunOn(ctx, clusterfault.Config{}, cl, rdb)
	if err != nil {
		t.Fatalf("cluster fault run: %v; worker log:\n%s", err, res.WorkerLog)
	}
	p99 := res.P(0.99)
	t.Logf("healthy queue: %d jobs, start latency p50 %s p99 %s max %s; faulty queue served again %s after the pause, %s after the restart; faulty jobs ran %d, lost with the master's data %d",
		len(res.Healthy), res.P(0.5), p99, res.P(1), res.Recovered[clusterfault.Paused], res.Recovered[clusterfault.Down], res.FaultyRan, res.FaultyLost)
	for _, p := range res.Problems {
		t.Error(p)
	}
	if len(res.Healthy) < 400 {
		t.Errorf("only %d jobs ran on the healthy queue", len(res.Healthy))
	}
	// 10 ms is the target the bench measures (2–3 ms there); 50 ms leaves room for the
	// race detector and a loaded machine (14 ms seen) and still fails a worker that
	// waits NodeDeadline on the faulty master at each fault's start (55–85 ms seen)
	if p99 > 50*time.Millisecond || res.P(1) > 2*time.Second {
		t.Errorf("healthy queue: start latency p99 %s, max %s: its jobs waited on the faulty master", p99, res.P(1))
	}
	for f, d := range res.Recovered {
		if d > time.Second {
			t.Errorf("faulty queue served again %s after its master's return (%s), want within 1s", d, f)
		}
	}
	if t.Failed() {
		slices.Sort(res.Slow)
		t.Logf("slow starts on the healthy queue:\n%s", strings.Join(res.Slow, "\n"))
		t.Logf("worker log:\n%s", res.WorkerLog)
	}
}

// startCluster starts a cluster of n masters (see redistest.StartCluster), stopped at
// test end; the masters' logs are shown if the test failed.
func startCluster(t *testing.T, n int) *redistest.Cluster {
	t.Helper()
	c, err := redistest.StartCluster(n)
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, a := range c.Addrs {
				if l := c.Logs(i); l != "" {
					t.Logf("redis-server %s log:\n%s", a, l)
				}
			}
		}
		c.Close()
	})
	return c
}

var clusterQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// queuesOnMasters returns n queue names whose keys live on n different masters.
func queuesOnMasters(t *testing.T, rdb *redis.ClusterClient, n int) []string {
	t.Helper()
	ctx := context.Background()
	seen := map[string]bool{}
	var out []string
	for i := 0; len(out) < n && i < 1000; i++ {
		q := "q" + strconv.Itoa(i)
		m, err := rdb.MasterForKey(ctx, store.KeysFor("chronoq", q).Records)
		if err != nil {
			t.Fatalf("master for queue %s: %v", q, err)
		}
		if addr := m.Options().Addr; !seen[addr] {
			seen[addr] = true
			out = append(out, q)
		}
	}
	if len(out) < n {
		t.Fatalf("found queues on %d masters, want %d", len(out), n)
	}
	return out
}

// testClusterKeyPlacement touches every kind of key on queues that live on three
// masters, then lists the keys of every master (KEYS on a cluster client reaches one
// node only): each key is a documented global key, or carries exactly one queue's
// tag, and all keys of a queue are in that queue's slot.
func testClusterKeyPlacement(t *testing.T, rdb *redis.ClusterClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := testutil.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	c := queue.NewClient(rdb, queue.Config{Now: clock.Now, Logger: clusterQuiet})
	t.Cleanup(func() { _ = c.Close() })
	s := clientstore.Of(c)
	qs := queuesOnMasters(t, rdb, 3)
	for _, q := range qs {
		for _, opts := range [][]job.Option{
			{job.Queue(q)},
			{job.Queue(q), job.Priority(9)},
			{job.Queue(q), job.In(time.Hour)},
			{job.Queue(q), job.Key("k"), job.In(time.Minute)},
			{job.Queue(q), job.Estimate(time.Second)},
		} {
			if _, err := c.EnqueueByName(ctx, "t", nil, opts...); err != nil {
				t.Fatalf("enqueue on %s: %v", q, err)
			}
		}
		got, err := s.Fetch(ctx, q, "w", 2, time.Minute)
		must(t, err)
		if len(got) != 2 {
			t.Fatalf("fetched %d from %s", len(got), q)
		}
		_, err = s.Ack(ctx, q, "w", []store.Done{{ID: got[0].ID, Retention: time.Minute,
			Sample: store.Sample{Task: "t", Ran: time.Millisecond, Enqueued: clock.Now(), Started: clock.Now()}}})
		must(t, err)
		_, err = s.Fail(ctx, q, "w", store.Failure{ID: got[1].ID, Error: "x", Stack: "s", Started: clock.Now()})
		must(t, err)
		must(t, c.SetRankingMode(ctx, q, ranking.ModeShadow))
		must(t, c.Pause(ctx, q))
		_, err = s.SetBeatEntry(ctx, q, "e-"+q, "{}")
		must(t, err)
	}
	must(t, s.Heartbeat(ctx, store.WorkerInfo{ID: "w", Queues: qs}, time.Minute))
	must(t, s.MarkIdle(ctx, qs, "w", clock.Now().Add(time.Minute), time.Minute))
	must(t, s.Poke(ctx, "w"))
	var ticks []store.BeatTick
	for _, q := range qs {
		ticks = append(ticks, store.BeatTick{Queue: q, Name: "e-" + q, Tick: clock.Now(),
			Job: store.NewJob{ID: job.NewID(), Lane: store.LaneMember(5, "t"), Record: []byte{0x80}}})
	}
	_, err := s.FireBeats(ctx, ticks, time.Hour)
	must(t, err)

	type placed struct{ key, node string }
	var mu sync.Mutex
	var all []placed
	must(t, rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys, err := m.Keys(ctx, "*").Result()
		mu.Lock()
		defer mu.Unlock()
		for _, k := range keys {
			all = append(all, placed{k, m.Options().Addr})
		}
		return err
	}))
	global := func(k string) bool {
		switch k {
		case "chronoq:queues", "chronoq:workers", "chronoq:beat:entries":
			return true
		}
		return strings.HasPrefix(k, "chronoq:worker:") || strings.HasPrefix(k, "chronoq:poke:")
	}
	nodeOf := map[string]map[string]bool{}
	perQueue := map[string]int{}
	for _, p := range all {
		if global(p.key) {
			continue
		}
		i := strings.IndexByte(p.key, '{')
		j := strings.IndexByte(p.key[i+1:], '}')
		if i < 0 || j <= 0 {
			t.Errorf("key %q (on %s) has no hash tag and is not a documented global key", p.key, p.node)
			continue
		}
		tag := p.key[i+1 : i+1+j]
		want, err := rdb.ClusterKeySlot(ctx, "{"+tag+"}").Result()
		must(t, err)
		got, err := rdb.ClusterKeySlot(ctx, p.key).Result()
		must(t, err)
		if got != want {
			t.Errorf("key %q is in slot %d, not its queue's slot %d", p.key, got, want)
		}
		if nodeOf[tag] == nil {
			nodeOf[tag] = map[string]bool{}
		}
		nodeOf[tag][p.node] = true
		perQueue[tag]++
	}
	for _, q := range qs {
		if len(nodeOf[q]) != 1 || perQueue[q] < 15 {
			t.Errorf("queue %s: %d keys on nodes %v, want all on one node", q, perQueue[q], nodeOf[q])
		}
	}
	for tag := range nodeOf {
		if !slices.Contains(qs, tag) {
			t.Errorf("keys tagged {%s}, which is no queue", tag)
		}
	}
	// the suite's KeysShareHashTag lists keys with one KEYS on the cluster client: it
	// only sees every key if the client sends KEYS to every shard
	viaClient, err := rdb.Keys(ctx, "*").Result()
	must(t, err)
	t.Logf("%d keys on 3 masters (KEYS through the cluster client sees %d); per queue %v", len(all), len(viaClient), perQueue)
}

// testClusterWaitAcross waits on jobs of queues on two masters with one client (its
// pub/sub connection is on one node; PUBLISH reaches every node of a cluster).
func testClusterWaitAcross(t *testing.T, rdb *redis.ClusterClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c := queue.NewClient(rdb, queue.Config{Logger: clusterQuiet})
	t.Cleanup(func() { _ = c.Close() })
	s := clientstore.Of(c)
	qs := queuesOnMasters(t, rdb, 2)
	var hs []*queue.Handle
	for _, q := range qs {
		h, err := c.EnqueueByName(ctx, "t", nil, job.Queue(q))
		must(t, err)
		hs = append(hs, h)
	}
	errs := make(chan error, len(hs))
	for i, h := range hs {
		go func() {
			out, err := queue.WaitResult[string](ctx, h)
			if err == nil && out != qs[i] {
				err = fmt.Errorf("result %q, want %q", out, qs[i])
			}
			errs <- err
		}()
	}
	for i, q := range qs {
		got, err := s.Fetch(ctx, q, "w", 1, time.Minute)
		must(t, err)
		if len(got) != 1 {
			t.Fatalf("fetched %d from %s", len(got), q)
		}
		res, _ := job.EncodeArgs(q)
		_, err = s.Ack(ctx, q, "w", []store.Done{{ID: hs[i].ID, Retention: time.Minute, Result: res}})
		must(t, err)
	}
	for range hs {
		if err := <-errs; err != nil {
			t.Errorf("wait: %v", err)
		}
	}
}

// testClusterBeat fires entries of queues on three masters in one pipelined round.
func testClusterBeat(t *testing.T, rdb *redis.ClusterClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	clock := testutil.NewClock(time.Date(2026, 1, 5, 0, 0, 30, 0, time.UTC))
	c := queue.NewClient(rdb, queue.Config{Now: clock.Now, Logger: clusterQuiet})
	t.Cleanup(func() { _ = c.Close() })
	qs := queuesOnMasters(t, rdb, 3)
	var entries []beat.Entry
	for _, q := range qs {
		must(t, c.DeclareQueue(ctx, q))
		entries = append(entries, beat.Entry{Name: "every-minute-" + q, Spec: "* * * * *", Task: "sync", Queue: q})
	}
	b, err := beat.New(c, beat.Config{Entries: entries, Logger: clusterQuiet})
	must(t, err)
	must(t, b.Start(ctx))
	_, err = b.Tick(ctx) // the entries start now
	must(t, err)
	for range 3 {
		clock.Advance(time.Minute)
		_, err = b.Tick(ctx)
		must(t, err)
	}
	for _, q := range qs {
		if n := counts(t, &bundle{ctx: ctx, c: c}, q).Pending; n != 3 {
			t.Errorf("queue %s: %d jobs for 3 ticks", q, n)
		}
	}
	st, err := b.List(ctx)
	must(t, err)
	if len(st) != len(qs) {
		t.Errorf("beat lists %d entries, want %d", len(st), len(qs))
	}
}

// runWorker starts a real worker on the cluster serving queues; its warnings and
// errors go to the returned buffer.
func runWorker(t *testing.T, c *queue.Client, queues []string) *testutil.LogBuffer {
	t.Helper()
	logs := &testutil.LogBuffer{}
	var qcs []worker.QueueConfig
	for _, q := range queues {
		qcs = append(qcs, worker.QueueConfig{Name: q})
	}
	w, err := worker.New(c, worker.Config{Queues: qcs, Concurrency: 4, IdleBlock: time.Second, Lease: 2 * time.Second,
		HeartbeatInterval: 500 * time.Millisecond, ShutdownTimeout: 2 * time.Second, ID: "cluster-w",
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	must(t, err)
	w.HandleFunc("echo", func(ctx context.Context, j *job.Job) (any, error) { return j.Options.Queue, nil })
	must(t, w.Start(context.Background()))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return logs
}

// workerRound enqueues one echo job per queue and waits for its result, each within
// limit; it reports the jobs that did not finish in time.
func workerRound(t *testing.T, c *queue.Client, queues []string, limit time.Duration) []string {
	t.Helper()
	var late []string
	for _, q := range queues {
		h, err := c.EnqueueByName(context.Background(), "echo", nil, job.Queue(q))
		must(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		start := time.Now()
		out, err := queue.WaitResult[string](ctx, h)
		cancel()
		if err != nil || out != q {
			state := "unknown"
			if j, _ := c.Job(context.Background(), q, h.ID); j != nil {
				state = string(j.State)
			}
			late = append(late, fmt.Sprintf("job %s on %s: result %q, err %v after %s, state now %s",
				h.ID, q, out, err, time.Since(start).Round(time.Millisecond), state))
		}
	}
	return late
}

// testClusterWorkerOneQueue runs jobs through a real worker serving one queue: first
// one the worker fetches at once, then, with the worker idle (blocked waiting for
// work), jobs that must wake it.
func testClusterWorkerOneQueue(t *testing.T, rdb *redis.ClusterClient) {
	c := queue.NewClient(rdb, queue.Config{Logger: clusterQuiet})
	t.Cleanup(func() { _ = c.Close() })
	qs := []string{"default"}
	logs := runWorker(t, c, qs)
	late := workerRound(t, c, qs, 5*time.Second)
	waitIdle(t, c, "default", logs)
	late = append(late, workerRound(t, c, qs, time.Second)...)
	reportWorker(t, c, qs, logs, late)
}

// testClusterWorkerTwoQueues is the same with the worker serving queues on two masters.
func testClusterWorkerTwoQueues(t *testing.T, rdb *redis.ClusterClient) {
	c := queue.NewClient(rdb, queue.Config{Logger: clusterQuiet})
	t.Cleanup(func() { _ = c.Close() })
	qs := queuesOnMasters(t, rdb, 2)
	logs := runWorker(t, c, qs)
	late := workerRound(t, c, qs, 5*time.Second)
	waitIdle(t, c, qs[0], logs)
	late = append(late, workerRound(t, c, qs, time.Second)...)
	reportWorker(t, c, qs, logs, late)
}

// waitIdle waits until the worker, with nothing to do, has gone idle: it has marked
// itself idle on queue (and blocks waiting for work), or it has logged why it could
// not wait.
func waitIdle(t *testing.T, c *queue.Client, q string, logs *testutil.LogBuffer) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, "worker idle on "+q, func() bool {
		n, err := clientstore.Of(c).Redis().ZCard(context.Background(), clientstore.Of(c).Keys(q).Idle).Result()
		return (err == nil && n > 0) || logs.String() != ""
	})
}

// reportWorker fails the test for jobs not done in time (with what is left in the
// queues' hand-off lists) and for the worker's warnings, each distinct one once with
// how often it came.
func reportWorker(t *testing.T, c *queue.Client, queues []string, logs *testutil.LogBuffer, late []string) {
	t.Helper()
	for _, l := range late {
		t.Errorf("not done in time: %s", l)
	}
	if len(late) > 0 {
		for _, q := range queues {
			n, _ := clientstore.Of(c).Redis().LLen(context.Background(), clientstore.Of(c).Keys(q).Ready).Result()
			t.Logf("queue %s: %d jobs handed off to an idle worker and never taken", q, n)
		}
	}
	var order []string
	seen := map[string]int{}
	first := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line == "" {
			continue
		}
		key := line
		if i := strings.Index(line, " level="); i >= 0 {
			key = line[i+1:] // without the time
		}
		if seen[key] == 0 {
			order = append(order, key)
			first[key] = line
		}
		seen[key]++
	}
	for _, k := range order {
		t.Errorf("worker logged %d times: %s", seen[k], first[k])
	}
}

// testClusterCapped: a worker whose only queue is at its cap waits on its poke list
// alone, is poked awake as the slot frees, runs the rest, and stops.
func testClusterCapped(t *testing.T, rdb *redis.ClusterClient) {
	c := queue.NewClient(rdb, queue.Config{Logger: clusterQuiet})
	t.Cleanup(func() { _ = c.Close() })
	w, err := worker.New(c, worker.Config{Queues: []worker.QueueConfig{{Name: "capped", Concurrency: 1}}, Concurrency: 4,
		IdleBlock: time.Second, Logger: clusterQuiet})
	must(t, err)
	w.HandleFunc("slow", func(ctx context.Context, j *job.Job) (any, error) {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
		return nil, nil
	})
	must(t, w.Start(context.Background()))
	var hs []*queue.Handle
	for range 3 {
		h, err := c.EnqueueByName(context.Background(), "slow", nil, job.Queue("capped"))
		must(t, err)
		hs = append(hs, h)
	}
	for _, h := range hs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := h.Wait(ctx)
		cancel()
		must(t, err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Stop hung")
	}
}

// testClusterNoSpin: once a job has woken it, an idle worker on queues of two masters
// goes back to blocking; it does not wake itself again and again.
func testClusterNoSpin(t *testing.T, rdb *redis.ClusterClient) {
	c := queue.NewClient(rdb, queue.Config{Logger: clusterQuiet})
	t.Cleanup(func() { _ = c.Close() })
	qs := queuesOnMasters(t, rdb, 2)
	logs := runWorker(t, c, qs)
	waitIdle(t, c, qs[0], logs)
	if late := workerRound(t, c, qs, 5*time.Second); len(late) > 0 {
		t.Fatalf("late: %v", late)
	}
	waitIdle(t, c, qs[0], logs)
	blpops := func() int64 {
		var n atomic.Int64
		_ = rdb.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
			info, err := m.Info(ctx, "commandstats").Result()
			if err != nil {
				return err
			}
			for _, line := range strings.Split(info, "\n") {
				if rest, ok := strings.CutPrefix(line, "cmdstat_blpop:calls="); ok {
					v, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
					n.Add(v)
				}
			}
			return nil
		})
		return n.Load()
	}
	before := blpops()
	// IdleBlock is 1s: over 2s an idle worker makes at most a few waits of 3 BLPOPs
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if blpops()-before > 30 {
			t.Fatalf("an idle worker made %d BLPOPs within 2s: it spins", blpops()-before)
		}
		time.Sleep(100 * time.Millisecond) // sampling another process's counters
	}
	if s := logs.String(); s != "" {
		t.Errorf("worker warnings: %s", s)
	}
}

// testClusterWaitError: an error on one node's BLPOP is not taken for a wake-up, and
// does not end the wait either: the queue is named in Wake.Failed and the wait goes on
// with the others. Only when every BLPOP failed does the wait fail.
func testClusterWaitError(t *testing.T, rdb *redis.ClusterClient) {
	c := queue.NewClient(rdb, queue.Config{Logger: clusterQuiet})
	t.Cleanup(func() { _ = c.Close() })
	s := clientstore.Of(c)
	qs := queuesOnMasters(t, rdb, 2)
	ctx := context.Background()
	spec := store.WaitFor{Ready: qs, Wake: qs, Worker: "w-err", Timeout: time.Second, NodeDeadline: 100 * time.Millisecond}
	// a wrong type where the wait blocks: its BLPOP fails at once
	must(t, rdb.Set(ctx, s.Keys(qs[1]).Wake, "x", time.Minute).Err())
	start := time.Now()
	wk, err := s.WaitForWork(ctx, rdb, spec)
	if err != nil || wk.Queue != "" || !strings.Contains(fmt.Sprint(wk.Failed[qs[1]]), "WRONGTYPE") || len(wk.Failed) != 1 {
		t.Fatalf("wait with one failing queue: %+v %v, want a timeout naming %s's WRONGTYPE", wk, err, qs[1])
	}
	if time.Since(start) < 900*time.Millisecond {
		t.Fatalf("the failing queue ended the wait after %s", time.Since(start))
	}
	// the healthy queue is still heard while the other fails
	go func() { _ = s.Nudge(ctx, qs[0]) }()
	wk, err = s.WaitForWork(ctx, rdb, store.WaitFor{Ready: qs, Wake: qs, Worker: "w-err", Timeout: 5 * time.Second, NodeDeadline: 100 * time.Millisecond})
	if err != nil || wk.Queue != qs[0] {
		t.Fatalf("nudged wait beside a failing queue: %+v %v", wk, err)
	}
	// every list failing (the poke list too) fails the wait, at once
	must(t, rdb.Set(ctx, s.Keys(qs[0]).Wake, "x", time.Minute).Err())
	must(t, rdb.Set(ctx, s.PokeKey("w-err"), "x", time.Minute).Err())
	start = time.Now()
	if _, err := s.WaitForWork(ctx, rdb, spec); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("wait with every node failing returned %v, want the WRONGTYPE error", err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Errorf("a wait whose every BLPOP failed took %s", time.Since(start))
	}
	// with nothing in the way, an empty wait times out quietly, and a nudge ends it
	for _, k := range []string{s.Keys(qs[0]).Wake, s.Keys(qs[1]).Wake, s.PokeKey("w-err")} {
		must(t, rdb.Del(ctx, k).Err())
	}
	start = time.Now()
	wk, err = s.WaitForWork(ctx, rdb, spec) // BLPOP counts whole seconds
	if err != nil || wk.Queue != "" || len(wk.Failed) > 0 || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("empty wait: %+v %v after %s", wk, err, time.Since(start))
	}
	must(t, s.Nudge(ctx, qs[1]))
	wk, err = s.WaitForWork(ctx, rdb, store.WaitFor{Ready: qs, Wake: qs, Worker: "w-err", Timeout: 5 * time.Second})
	if err != nil || wk.Queue != qs[1] {
		t.Fatalf("nudged wait: %+v %v", wk, err)
	}
	// ctx ending ends the wait at once
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	if _, err := s.WaitForWork(cctx, rdb, store.WaitFor{Ready: qs, Wake: qs, Worker: "w-err", Timeout: 5 * time.Second}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled wait returned %v", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("a canceled wait returned after %s", time.Since(start))
	}
}
