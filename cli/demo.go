package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/worker"
)

// Demo tasks, run by the shipped binary and the dev command.
type (
	// AddArgs are the arguments of demo.add.
	AddArgs struct {
		A int `json:"a"`
		B int `json:"b"`
	}
	// SleepArgs are the arguments of demo.sleep.
	SleepArgs struct {
		Ms int `json:"ms"`
	}
	// FlakyArgs are the arguments of demo.flaky: it fails until attempt Succeed.
	FlakyArgs struct {
		Succeed int `json:"succeed"`
	}
)

// The demo task declarations.
var (
	DemoAdd   = job.NewTask[AddArgs]("demo.add")
	DemoSleep = job.NewTask[SleepArgs]("demo.sleep")
	DemoFlaky = job.NewTask[FlakyArgs]("demo.flaky", job.WithBackoff(job.ConstantBackoff(300*time.Millisecond)))
)

// RegisterDemo registers the demo tasks on w.
func RegisterDemo(w *worker.Worker) {
	worker.HandleResult(w, DemoAdd, func(ctx context.Context, a AddArgs) (int, error) { return a.A + a.B, nil })
	worker.HandleResult(w, DemoSleep, func(ctx context.Context, a SleepArgs) (string, error) {
		if a.Ms < 0 {
			return "", job.SkipRetry(errors.New("ms must not be negative"))
		}
		select {
		case <-time.After(time.Duration(a.Ms) * time.Millisecond):
			return fmt.Sprintf("slept %dms", a.Ms), nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	worker.HandleResult(w, DemoFlaky, func(ctx context.Context, a FlakyArgs) (string, error) {
		j := job.FromContext(ctx)
		if j.Attempt < a.Succeed {
			return "", fmt.Errorf("attempt %d fails on purpose", j.Attempt)
		}
		return fmt.Sprintf("succeeded on attempt %d", j.Attempt), nil
	})
}
