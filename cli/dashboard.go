package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/queue"
)

// cmdDashboard serves the dashboard (JSON API and /metrics). It binds to loopback by
// default; any other address needs credentials, or it refuses to start.
func cmdDashboard(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "dashboard", "dashboard [--addr 127.0.0.1:8080] [--user U | --token T] [--read-only] [--allowed-host H]")
	var cf connFlags
	cf.add(fs, e)
	addr := fs.String("addr", envOr("CHRONOQ_DASHBOARD_ADDR", "127.0.0.1:8080"), "listen address (env CHRONOQ_DASHBOARD_ADDR)")
	user := fs.String("user", envOr("CHRONOQ_DASHBOARD_USER", ""), "basic auth user (env CHRONOQ_DASHBOARD_USER)")
	token := fs.String("token", "", "bearer token (better: env CHRONOQ_DASHBOARD_TOKEN)")
	readOnly := fs.Bool("read-only", false, "refuse every action")
	basePath := fs.String("base-path", envOr("CHRONOQ_DASHBOARD_BASE_PATH", ""), "path a proxy serves it under (and strips), e.g. /chronoq: the pages' links carry it (env CHRONOQ_DASHBOARD_BASE_PATH)")
	var allowed []string
	hostsGiven := false
	fs.Func("allowed-host", "a Host served besides loopback without credentials, e.g. the name a proxy forwards; repeatable or comma-separated (env CHRONOQ_DASHBOARD_ALLOWED_HOSTS)", func(v string) error {
		hostsGiven = true
		hs, err := parseHosts(v)
		allowed = append(allowed, hs...)
		return err
	})
	if _, err := parseArgs(fs, args, 0, 0); err != nil {
		return flagExit(err)
	}
	if v := os.Getenv("CHRONOQ_DASHBOARD_ALLOWED_HOSTS"); v != "" && !hostsGiven {
		hs, err := parseHosts(v)
		if err != nil {
			fmt.Fprintln(e.err, "chronoq-worker dashboard: CHRONOQ_DASHBOARD_ALLOWED_HOSTS:", err)
			return ExitUsage
		}
		allowed = hs
	}
	password := os.Getenv("CHRONOQ_DASHBOARD_PASSWORD") // never a flag: flags show in ps
	if *token == "" {
		*token = os.Getenv("CHRONOQ_DASHBOARD_TOKEN")
	}
	if err := checkBind(*addr, *user, password, *token); err != nil {
		fmt.Fprintln(e.err, "chronoq-worker dashboard:", err)
		return ExitUsage
	}
	rdb, err := cf.connect(ctx)
	if err != nil {
		fmt.Fprintln(e.err, "chronoq-worker dashboard:", err)
		return ExitFailure
	}
	defer rdb.Close()
	log := cf.logger(e.err)
	c := queue.NewClient(rdb, queue.Config{Namespace: cf.namespace, Logger: log})
	defer c.Close()
	b, _ := beat.New(c, beat.Config{Logger: log}) // to show and switch the stored entries
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 10 * time.Second,
		Handler: dashboard.New(c, dashboard.Config{User: *user, Password: password, Token: *token, ReadOnly: *readOnly, BasePath: *basePath,
			AllowedHosts: allowed, Beat: b, Logger: log})}
	runCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-runCtx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("dashboard listening", "url", "http://"+*addr, "redis", Redact(cf.url), "read_only", *readOnly, "allowed_hosts", allowed)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(e.err, "chronoq-worker dashboard:", err)
		return ExitFailure
	}
	return ExitOK
}

// checkBind refuses a non-loopback address without credentials.
func checkBind(addr, user, password, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %v", addr, err)
	}
	loopback := host == "localhost"
	if ip := net.ParseIP(host); ip != nil {
		loopback = ip.IsLoopback()
	}
	if loopback {
		return nil
	}
	if token == "" && (user == "" || password == "") {
		return fmt.Errorf("--addr %q is not loopback: set credentials (--user with env CHRONOQ_DASHBOARD_PASSWORD, or env CHRONOQ_DASHBOARD_TOKEN) or bind to 127.0.0.1", addr)
	}
	return nil
}

// parseHosts reads "a.example,b.example:8443" (a port is allowed, and ignored: any
// port is served); a URL instead of a host is refused.
func parseHosts(v string) ([]string, error) {
	var out []string
	for _, h := range strings.Split(v, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if strings.ContainsAny(h, "/@ ") {
			return nil, fmt.Errorf("%q is not a host name (e.g. chronoq.internal, without scheme or path)", h)
		}
		out = append(out, h)
	}
	return out, nil
}
