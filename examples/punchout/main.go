// Command punchout is chronoq's far-future scheduling example: when an employee punches
// in, an automatic punch-out is scheduled for the end of the longest allowed shift,
// keyed by the employee; punching in again replaces it (a new job, due later), punching
// out by hand cancels it.
// Nothing about the pending punch-outs lives in any process: they wait in Redis.
//
//	go run ./examples/punchout                      # embedded Redis, a 2 s "shift"
//	CHRONOQ_REDIS_URL=redis://localhost:6379/0 go run ./examples/punchout -shift 24h
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/chronoq/chronoq/internal/devredis"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// PunchOut is the task both sides share.
type PunchOut struct {
	Employee int       `json:"employee"`
	ShiftAt  time.Time `json:"shift_at"`
}

var autoPunchOut = job.NewTask[PunchOut]("timeclock.auto-punch-out", job.Queue("timeclock"))

func key(employee int) string { return fmt.Sprintf("auto-punch-out:employee:%d", employee) }

// punchIn schedules the employee's automatic punch-out, replacing the one waiting under
// their key (a new job with a new id).
func punchIn(ctx context.Context, c *queue.Client, employee int, now time.Time, shift time.Duration) (*queue.Handle, error) {
	return queue.Enqueue(ctx, c, autoPunchOut, PunchOut{Employee: employee, ShiftAt: now},
		job.Key(key(employee)), job.At(now.Add(shift)), job.SkipIfLate(time.Hour))
}

// punchOut is the employee punching out by hand: the automatic one goes.
func punchOut(ctx context.Context, c *queue.Client, employee int) error {
	return c.CancelKey(ctx, "timeclock", key(employee))
}

func main() {
	shift := flag.Duration("shift", 2*time.Second, "longest shift before the automatic punch-out")
	flag.Parse()
	rdb, stop, err := devredis.Open()
	if err != nil {
		fmt.Fprintln(os.Stderr, "punchout:", err)
		os.Exit(1)
	}
	defer stop()
	if err := run(context.Background(), rdb, *shift, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "punchout:", err)
		os.Exit(1)
	}
}

// run plays a morning at the time clock: three employees punch in, one punches in again
// (moving the automatic punch-out), one punches out by hand; the worker punches out the
// others when their shift runs out.
func run(ctx context.Context, rdb *redis.Client, shift time.Duration, out io.Writer) error {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := queue.NewClient(rdb, queue.Config{Logger: quiet})
	defer c.Close()
	done := make(chan PunchOut, 3)
	w, err := worker.New(c, worker.Config{Queues: []worker.QueueConfig{{Name: "timeclock"}}, Logger: quiet})
	if err != nil {
		return err
	}
	worker.Handle(w, autoPunchOut, func(ctx context.Context, p PunchOut) error {
		done <- p
		return nil
	})
	if err := w.Start(ctx); err != nil {
		return err
	}
	defer w.Stop(context.Background())

	now := time.Now()
	for _, e := range []int{42, 7, 13} {
		if _, err := punchIn(ctx, c, e, now, shift); err != nil {
			return err
		}
		fmt.Fprintf(out, "employee %d punched in; automatic punch-out due in %s\n", e, shift)
	}
	// 13 forgot they had punched in and did it again: one punch-out, replaced by a later one
	if _, err := punchIn(ctx, c, 13, now.Add(shift/4), shift); err != nil {
		return err
	}
	fmt.Fprintf(out, "employee 13 punched in again; the automatic punch-out moved\n")
	if err := punchOut(ctx, c, 7); err != nil {
		return err
	}
	fmt.Fprintf(out, "employee 7 punched out by hand; the automatic punch-out is canceled\n")
	upcoming, err := c.Upcoming(ctx, "timeclock", now, now.Add(2*shift), 10)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d automatic punch-outs waiting in Redis\n", len(upcoming))
	timeout := time.After(shift + 10*time.Second)
	for range 2 {
		select {
		case p := <-done:
			fmt.Fprintf(out, "employee %d automatically punched out (shift began %s)\n", p.Employee, p.ShiftAt.Format(time.TimeOnly))
		case <-timeout:
			return fmt.Errorf("the automatic punch-outs did not come")
		}
	}
	return nil
}
