// Command ownworker is how you deploy your own tasks: a 10-line main that registers
// them and hands them to chronoq's command line, so your binary has every subcommand
// of chronoq-worker (run, beat, dashboard, dev, info, enqueue, job, requeue, ...) and
// runs your tasks instead of the demo ones.
//
//	go build -o myworker ./examples/ownworker
//	./myworker run --queues reports:2,default --concurrency 20     # a worker
//	./myworker enqueue reports.build --args '{"month":"2026-11"}' --queue reports --wait 30s
//	./myworker dev --queues reports                                # all in one, embedded Redis
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/chronoq/chronoq/cli"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/worker"
)

// ReportArgs are the arguments of reports.build; any service can enqueue it by name
// with JSON such as {"month":"2026-11"}.
type ReportArgs struct {
	Month string `json:"month"`
}

var buildReport = job.NewTask[ReportArgs]("reports.build", job.Queue("reports"), job.MaxRetries(5))

func main() {
	os.Exit(cli.Main(os.Args[1:], func(w *worker.Worker) {
		worker.HandleResult(w, buildReport, func(ctx context.Context, a ReportArgs) (string, error) {
			return fmt.Sprintf("report for %s: 42 rows", a.Month), nil
		})
	}))
}
