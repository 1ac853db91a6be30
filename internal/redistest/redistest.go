package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process owned by the test binary.
type Server struct {
	Addr string
	cmd  *exec.Cmd
}

var shared *Server

// Start launches redis-server on a free port with persistence off and waits until it
// answers PING.
func Start() (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redistest: redis-server not found on PATH (apt-get install redis-server): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return startOnPath(path, port)
}

func startOn(port int) (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	return startOnPath(path, port)
}

func startOnPath(path string, port int) (*Server, error) {
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redistest: start redis-server: %w", err)
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), cmd: cmd}
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("redistest: redis-server on %s did not answer: %w", s.Addr, err)
		}
		time.Sleep(10 * time.Millisecond) // waiting for a process to listen: nothing to block on
	}
}

// Restart starts the server again on the same port, empty (it keeps nothing on disk).
func (s *Server) Restart() error {
	s.Stop()
	port, _ := strconv.Atoi(s.Addr[len("127.0.0.1:"):])
	n, err := startOn(port)
	if err != nil {
		return err
	}
	s.cmd = n.cmd
	return nil
}

// Stop kills the server.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// Main runs the package's tests with one shared server.
func Main(m *testing.M) {
	s, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared = s
	code := m.Run()
	s.Stop()
	os.Exit(code)
}

// Addr is the shared server's address.
func Addr() string {
	if shared == nil {
		panic("redistest: call redistest.Main from TestMain")
	}
	return shared.Addr
}

// Client flushes the shared server and returns a client on it, closed at test end.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: Addr()})
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatalf("redistest: flush: %v", err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
