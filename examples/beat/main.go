// Command beat shows the seed deployment's recurring jobs defined in Go (the same
// entries as beat.yaml) and prints when each will run next. With -run it runs the beat
// against CHRONOQ_REDIS_URL until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/queue"
	"github.com/redis/go-redis/v9"
)

func intp(n int) *int { return &n }

// Entries are the seed schedule: a daily model retrain on ml at 02:00, an hourly data
// sync on data, a cleanup every 10 minutes on default.
func Entries() []beat.Entry {
	return []beat.Entry{
		{Name: "nightly-retrain", Spec: "0 2 * * *", TimeZone: "Europe/Berlin", Task: "ml.retrain", Queue: "ml",
			Priority: intp(7), Timeout: 2 * time.Hour, Overlap: beat.OverlapSkip, CatchUp: beat.CatchUpLatest},
		{Name: "hourly-data-sync", Spec: "@hourly", Task: "data.sync", Queue: "data", Overlap: beat.OverlapSkip},
		{Name: "cleanup", Spec: "*/10 * * * *", Task: "cleanup.expired", Queue: "default"},
	}
}

func main() {
	run := flag.Bool("run", false, "run the beat against CHRONOQ_REDIS_URL until interrupted")
	flag.Parse()
	if err := printNext(os.Stdout, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "beat:", err)
		os.Exit(1)
	}
	if !*run {
		return
	}
	opt, err := redis.ParseURL(os.Getenv("CHRONOQ_REDIS_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "beat: set CHRONOQ_REDIS_URL:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := queue.NewClient(redis.NewClient(opt), queue.Config{})
	for _, q := range []string{"ml", "data", "default"} {
		_ = c.DeclareQueue(ctx, q)
	}
	b, err := beat.New(c, beat.Config{Entries: Entries()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "beat:", err)
		os.Exit(2)
	}
	_ = b.Run(ctx)
}

// printNext prints each entry's next two runs after now.
func printNext(w io.Writer, now time.Time) error {
	for _, e := range Entries() {
		first, err := beat.NextRun(e, now)
		if err != nil {
			return err
		}
		second, _ := beat.NextRun(e, first)
		fmt.Fprintf(w, "%-17s %-14s on %-8s next %s, then %s\n", e.Name, e.Spec, e.Queue, first.Format(time.RFC3339), second.Format(time.RFC3339))
	}
	return nil
}
