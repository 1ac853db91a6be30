package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters without replicas, each a redis-server process
// on a free loopback port. It runs with cluster-require-full-coverage off, as a
// deployment that wants one master's trouble to stay on that master does: the other
// masters keep serving their slots while one is down or paused.
//
// The conformance suite and the cluster-fault bench use it.
type Cluster struct {
	Addrs []string // one per master, in the order they were started

	dir    string
	server string
	mu     sync.Mutex
	nodes  []*clusterNode
}

type clusterNode struct {
	port    int
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	exited  chan struct{}
}

// StartCluster starts n redis-server processes in cluster mode, joins them into a
// cluster of n masters with redis-cli, and waits until every node reports
// cluster_state:ok. It needs redis-server and redis-cli (Debian's redis-tools, which
// redis-server depends on). Close stops it.
func StartCluster(n int) (_ *Cluster, err error) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redistest: redis-server not on PATH: %w", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redistest: redis-cli not on PATH (it forms the cluster): %w", err)
	}
	dir, err := os.MkdirTemp("", "chronoq-cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, server: server}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w%s", err, c.logs())
			c.Close()
		}
	}()
	ports, err := clusterPorts(n)
	if err != nil {
		return nil, err
	}
	for i, port := range ports {
		c.Addrs = append(c.Addrs, "127.0.0.1:"+strconv.Itoa(port))
		c.nodes = append(c.nodes, &clusterNode{port: port, logPath: filepath.Join(dir, fmt.Sprintf("redis-%d.log", i))})
		if err := c.startNode(i); err != nil {
			return nil, err
		}
	}
	for i := range c.nodes {
		if err := c.waitNode(i, 10*time.Second, "PING", func(ctx context.Context, rdb *redis.Client) error {
			return rdb.Ping(ctx).Err()
		}); err != nil {
			return nil, err
		}
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redistest: redis-cli %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	for i := range c.nodes {
		if err := c.WaitReady(i, 20*time.Second); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// startNode starts master i's process; its node config (identity and slots) is kept in
// the cluster's directory across restarts, its data is not.
func (c *Cluster) startNode(i int) error {
	nd := c.nodes[i]
	logFile, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.server,
		"--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(c.dir, fmt.Sprintf("nodes-%d.conf", i)),
		"--cluster-require-full-coverage", "no",
		"--save", "", "--appendonly", "no",
		"--port", strconv.Itoa(nd.port), "--bind", "127.0.0.1",
		"--dir", c.dir, "--daemonize", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("redistest: start redis-server on %d: %w", nd.port, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	c.mu.Lock()
	nd.cmd, nd.logFile, nd.exited = cmd, logFile, exited
	c.mu.Unlock()
	return nil
}

// WaitReady waits until master i answers and sees the whole cluster: every slot
// assigned, every node known, state ok.
func (c *Cluster) WaitReady(i int, timeout time.Duration) error {
	n := strconv.Itoa(len(c.nodes))
	return c.waitNode(i, timeout, "cluster_state:ok", func(ctx context.Context, rdb *redis.Client) error {
		info, err := rdb.ClusterInfo(ctx).Result()
		if err != nil {
			return err
		}
		for _, want := range []string{"cluster_state:ok", "cluster_slots_assigned:16384",
			"cluster_known_nodes:" + n, "cluster_size:" + n} {
			if !strings.Contains(info, want+"\r\n") && !strings.HasSuffix(strings.TrimSpace(info), want) {
				return fmt.Errorf("no %q in CLUSTER INFO", want)
			}
		}
		return nil
	})
}

// waitNode calls check on a client of master i until it succeeds or timeout passes.
func (c *Cluster) waitNode(i int, timeout time.Duration, what string, check func(context.Context, *redis.Client) error) error {
	rdb := redis.NewClient(&redis.Options{Addr: c.Addrs[i], MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := check(ctx, rdb)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: %s: timed out after %s waiting for %s: %w", c.Addrs[i], timeout, what, err)
		}
		time.Sleep(10 * time.Millisecond) // another process's state: nothing to block on
	}
}

// Kill stops master i at once (SIGKILL), as a crash would: the other masters keep
// its slots assigned to it, and commands for them fail until it is back.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	nd := c.nodes[i]
	cmd, exited, logFile := nd.cmd, nd.exited, nd.logFile
	nd.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
	_ = logFile.Close()
}

// Restart starts master i again after Kill, with its identity and slots and without
// its data, and waits until it serves again (a restarted master refuses commands for
// about two seconds while it rejoins).
func (c *Cluster) Restart(i int, timeout time.Duration) error {
	if err := c.startNode(i); err != nil {
		return err
	}
	return c.WaitReady(i, timeout)
}

// Pause makes master i hold every client command for d (CLIENT PAUSE ... ALL): the
// node is up and connected but answers nothing, like one stalled by a long command.
func (c *Cluster) Pause(ctx context.Context, i int, d time.Duration) error {
	rdb := redis.NewClient(&redis.Options{Addr: c.Addrs[i]})
	defer rdb.Close()
	return rdb.Do(ctx, "CLIENT", "PAUSE", d.Milliseconds(), "ALL").Err()
}

// Close kills every master and removes the cluster's files.
func (c *Cluster) Close() {
	for i := range c.nodes {
		c.Kill(i)
	}
	_ = os.RemoveAll(c.dir)
}

// logs returns what the masters logged, for an error.
func (c *Cluster) logs() string {
	var b strings.Builder
	for i, nd := range c.nodes {
		if data, err := os.ReadFile(nd.logPath); err == nil && len(data) > 0 {
			fmt.Fprintf(&b, "\nredis-server %s log:\n%s", c.Addrs[i], data)
		}
	}
	return b.String()
}

// Logs returns what master i has logged.
func (c *Cluster) Logs(i int) string {
	data, _ := os.ReadFile(c.nodes[i].logPath)
	return string(data)
}

// clusterPorts picks n distinct free loopback ports whose cluster bus ports (port +
// 10000) are free too.
func clusterPorts(n int) ([]int, error) {
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for tries := 0; len(ports) < n && tries < 200; tries++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("redistest: free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		if p+10000 > 65535 {
			_ = l.Close()
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			_ = l.Close()
			continue
		}
		held = append(held, l, bus) // held until all are chosen, so none repeats
		ports = append(ports, p)
	}
	if len(ports) < n {
		return nil, errors.New("redistest: found only " + strconv.Itoa(len(ports)) + " free port pairs")
	}
	return ports, nil
}
