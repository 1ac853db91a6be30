package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/fairshare"
	"github.com/chronoq/chronoq/ranking/sim"
	"golang.org/x/term"
)

// opsCommand is the shape of the small commands: flags, positional arguments, a client.
type opsCommand struct {
	synopsis    string
	least, most int
	flags       func(fs *flag.FlagSet)
	check       func(pos []string) error // usage checks, before connecting
	run         func(ctx context.Context, e *env, c *queue.Client, pos []string) error
}

func (o opsCommand) exec(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, e.cmd, o.synopsis)
	var cf connFlags
	cf.add(fs, e)
	if o.flags != nil {
		o.flags(fs)
	}
	pos, err := parseArgs(fs, args, o.least, o.most)
	if err != nil {
		return flagExit(err)
	}
	if o.check != nil {
		if err := o.check(pos); err != nil {
			return e.fail(err)
		}
	}
	c, closeAll, code := cf.client(ctx, e)
	if code != ExitOK {
		return code
	}
	defer closeAll()
	if err := o.run(ctx, e, c, pos); err != nil {
		return e.fail(err)
	}
	return ExitOK
}

// findJob reads a job by id, in queue if given, else in every queue.
func findJob(ctx context.Context, c *queue.Client, queueName, id string) (*job.Job, error) {
	if queueName != "" {
		return c.Job(ctx, queueName, id)
	}
	return c.FindJob(ctx, id)
}

func cmdJob(ctx context.Context, e *env, args []string) int {
	var q string
	var asJSON bool
	return opsCommand{synopsis: "job ID [--queue Q] [--json]", least: 1, most: 1,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&q, "queue", "", "the job's queue (default: look in every queue)")
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		run: func(ctx context.Context, e *env, c *queue.Client, pos []string) error {
			j, err := findJob(ctx, c, q, pos[0])
			if err != nil {
				return err
			}
			v := dashboard.View(j)
			if asJSON {
				return printJSON(e.out, v)
			}
			tw := tabwriter.NewWriter(e.out, 0, 0, 2, ' ', 0)
			row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
			row("id", j.ID)
			row("task", j.Task)
			row("queue", j.Options.Queue)
			row("state", j.State)
			row("priority", j.Options.Priority)
			row("attempt", fmt.Sprintf("%d of %d", j.Attempt, j.Options.MaxRetries+1))
			if j.Options.Key != "" {
				row("key", j.Options.Key)
			}
			if j.Options.FairKey != "" {
				row("fair key", j.Options.FairKey)
			}
			args, _ := json.Marshal(v.Args)
			row("args", string(args))
			for _, t := range []struct {
				name string
				t    time.Time
			}{{"enqueued", j.EnqueuedAt}, {"due", j.DueAt}, {"started", j.StartedAt}, {"finished", j.FinishedAt}} {
				if !t.t.IsZero() {
					row(t.name, t.t.Format(time.RFC3339Nano))
				}
			}
			if j.Worker != "" {
				row("worker", j.Worker)
			}
			if v.Result != nil {
				out, _ := json.Marshal(v.Result)
				row("result", string(out))
			}
			if j.LastError != "" {
				label := "error"
				if j.State != job.StateFailed {
					label = "earlier error" // of a failed attempt before this one
				}
				row(label, j.LastError)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if j.Stack != "" {
				fmt.Fprintf(e.out, "stack:\n%s\n", j.Stack)
			}
			return nil
		}}.exec(ctx, e, args)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdRequeue(ctx context.Context, e *env, args []string) int {
	var q string
	var all bool
	return opsCommand{synopsis: "requeue ID... [--queue Q] | requeue --queue Q --all-failed", least: 0, most: -1,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&q, "queue", "", "the jobs' queue (default: look each job up)")
			fs.BoolVar(&all, "all-failed", false, "requeue every failed job of --queue")
		},
		check: func(ids []string) error {
			switch {
			case all && (q == "" || len(ids) > 0):
				return badUsage("--all-failed needs --queue and no ids")
			case !all && len(ids) == 0:
				return badUsage("name the failed jobs to requeue, or --queue Q --all-failed")
			}
			return nil
		},
		run: func(ctx context.Context, e *env, c *queue.Client, ids []string) error {
			if all {
				if err := knownQueue(ctx, c, q); err != nil {
					return err
				}
				n, err := c.Requeue(ctx, q)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.out, "requeued %d\n", n)
				return nil
			}
			var firstErr error
			moved := 0
			for _, id := range ids {
				j, err := findJob(ctx, c, q, id)
				if err == nil && j.State != job.StateFailed {
					err = fmt.Errorf("job %s is %s, not failed: only failed jobs are requeued", id, j.State)
				}
				if err == nil {
					var n int
					n, err = c.Requeue(ctx, j.Options.Queue, id)
					moved += n
				}
				if err != nil {
					fmt.Fprintf(e.err, "chronoq-worker requeue: %v\n", err)
					firstErr = cmp(firstErr, err)
				}
			}
			fmt.Fprintf(e.out, "requeued %d\n", moved)
			return silent(firstErr)
		}}.exec(ctx, e, args)
}

func cmdCancel(ctx context.Context, e *env, args []string) int {
	var q, key string
	return opsCommand{synopsis: "cancel ID... [--queue Q] | cancel --queue Q --key K", least: 0, most: -1,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&q, "queue", "", "the jobs' queue (default: look each job up)")
			fs.StringVar(&key, "key", "", "cancel the job under this schedule key, or stop it if it runs (with --queue)")
		},
		check: func(ids []string) error {
			switch {
			case key != "" && (q == "" || len(ids) > 0):
				return badUsage("--key needs --queue and no ids")
			case key == "" && len(ids) == 0:
				return badUsage("name the jobs to cancel, or --queue Q --key K")
			}
			return nil
		},
		run: func(ctx context.Context, e *env, c *queue.Client, ids []string) error {
			if key != "" {
				running, err := c.StopKey(ctx, q, key)
				if err != nil {
					return err
				}
				if running {
					fmt.Fprintf(e.out, "stopping the job under key %q: its worker cancels its context\n", key)
					return nil
				}
				fmt.Fprintf(e.out, "canceled the job under key %q\n", key)
				return nil
			}
			var firstErr error
			for _, id := range ids {
				j, err := findJob(ctx, c, q, id)
				running := false
				if err == nil {
					running, err = c.StopJob(ctx, j.Options.Queue, id)
				}
				switch {
				case err != nil:
					fmt.Fprintf(e.err, "chronoq-worker cancel: %v\n", err)
					firstErr = cmp(firstErr, err)
				case running:
					fmt.Fprintf(e.out, "stopping %s: its worker %s cancels its context; it ends canceled when its func returns\n", id, j.Worker)
				default:
					fmt.Fprintf(e.out, "canceled %s\n", id)
				}
			}
			return silent(firstErr)
		}}.exec(ctx, e, args)
}

// cmp keeps the first error.
func cmp(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// silentError carries an exit code for errors already printed one by one.
type silentError struct{ err error }

func (s silentError) Error() string { return "" }
func (s silentError) Unwrap() error { return s.err }

func silent(err error) error {
	if err == nil {
		return nil
	}
	return silentError{err}
}

func cmdPurge(ctx context.Context, e *env, args []string) int {
	var state string
	var yes bool
	return opsCommand{synopsis: "purge QUEUE --state pending|scheduled|failed|succeeded|canceled [--yes]", least: 1, most: 1,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&state, "state", "", "which jobs to delete (required); active jobs are never purged")
			fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
		},
		check: func([]string) error {
			switch job.State(state) {
			case job.StatePending, job.StateScheduled, job.StateFailed, job.StateSucceeded, job.StateCanceled:
				return nil
			}
			return badUsage("--state %q: purge takes pending, scheduled, failed, succeeded or canceled", state)
		},
		run: func(ctx context.Context, e *env, c *queue.Client, pos []string) error {
			st := job.State(state)
			if err := knownQueue(ctx, c, pos[0]); err != nil {
				return err
			}
			counts, err := c.Counts(ctx, pos[0])
			if err != nil {
				return err
			}
			n := map[job.State]int64{job.StatePending: counts.Pending, job.StateScheduled: counts.Scheduled,
				job.StateFailed: counts.Failed, job.StateSucceeded: counts.Succeeded, job.StateCanceled: counts.Canceled}[st]
			if !yes {
				ok, err := confirm(e, fmt.Sprintf("delete %d %s jobs of queue %q?", n, st, pos[0]))
				if err != nil {
					return err
				}
				if !ok {
					fmt.Fprintln(e.out, "nothing deleted")
					return nil
				}
			}
			start := time.Now()
			last := time.Now()
			deleted, err := c.Purge(ctx, pos[0], st, func(done int) {
				if time.Since(last) >= time.Second {
					last = time.Now()
					progress(e, "deleted", done, int(n), start)
				}
			})
			if err != nil {
				return fmt.Errorf("after deleting %d: %w", deleted, err)
			}
			fmt.Fprintf(e.out, "deleted %d\n", deleted)
			return nil
		}}.exec(ctx, e, args)
}

// confirm asks on a terminal; anywhere else it refuses, so a script never hangs.
func confirm(e *env, question string) (bool, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return false, badUsage("%s pass --yes to confirm (stdin is not a terminal)", question)
	}
	fmt.Fprintf(e.err, "%s [y/N] ", question)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	line = strings.ToLower(strings.TrimSpace(line))
	return line == "y" || line == "yes", nil
}

func cmdPause(ctx context.Context, e *env, args []string) int {
	return opsCommand{synopsis: "pause QUEUE", least: 1, most: 1,
		run: func(ctx context.Context, e *env, c *queue.Client, pos []string) error {
			if err := knownQueue(ctx, c, pos[0]); err != nil {
				return err
			}
			if err := c.Pause(ctx, pos[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "paused %s\n", pos[0])
			return nil
		}}.exec(ctx, e, args)
}

func cmdResume(ctx context.Context, e *env, args []string) int {
	return opsCommand{synopsis: "resume QUEUE", least: 1, most: 1,
		run: func(ctx context.Context, e *env, c *queue.Client, pos []string) error {
			if err := knownQueue(ctx, c, pos[0]); err != nil {
				return err
			}
			if err := c.Resume(ctx, pos[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "resumed %s\n", pos[0])
			return nil
		}}.exec(ctx, e, args)
}

// knownQueue refuses a queue nobody has enqueued to or declared: a typo should not
// pause a queue that does not exist.
func knownQueue(ctx context.Context, c *queue.Client, name string) error {
	qs, err := c.Queues(ctx)
	if err != nil {
		return err
	}
	for _, q := range qs {
		if q == name {
			return nil
		}
	}
	if len(qs) == 0 {
		return fmt.Errorf("%w: queue %q (no queue exists yet)", job.ErrNotFound, name)
	}
	return fmt.Errorf("%w: queue %q (known: %s)", job.ErrNotFound, name, strings.Join(qs, ", "))
}

func cmdRanking(ctx context.Context, e *env, args []string) int {
	return opsCommand{synopsis: "ranking show QUEUE | ranking mode QUEUE fifo|shadow|active", least: 2, most: 3,
		check: func(pos []string) error {
			switch {
			case pos[0] == "mode" && len(pos) == 3:
				_, err := ranking.ParseMode(pos[2])
				if err != nil {
					return badUsage("%v", err)
				}
				return nil
			case pos[0] == "show" && len(pos) == 2:
				return nil
			}
			return badUsage("use: ranking show QUEUE | ranking mode QUEUE fifo|shadow|active")
		},
		run: func(ctx context.Context, e *env, c *queue.Client, pos []string) error {
			if err := knownQueue(ctx, c, pos[1]); err != nil {
				return err
			}
			switch {
			case pos[0] == "mode" && len(pos) == 3:
				m, err := ranking.ParseMode(pos[2])
				if err != nil {
					return badUsage("%v", err)
				}
				if err := c.SetRankingMode(ctx, pos[1], m); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "queue %s: ranking mode %s\n", pos[1], m)
				return nil
			case pos[0] == "show" && len(pos) == 2:
				return showRanking(ctx, e.out, c, pos[1])
			}
			return badUsage("use: ranking show QUEUE | ranking mode QUEUE fifo|shadow|active")
		}}.exec(ctx, e, args)
}

func showRanking(ctx context.Context, w io.Writer, c *queue.Client, q string) error {
	rep, err := c.RankingQuality(ctx, q, 1000)
	if err != nil {
		return err
	}
	stats, err := c.RankingStats(ctx, q)
	if err != nil {
		return err
	}
	cfg := rep.Config
	fmt.Fprintf(w, "queue %s: mode %s, rule %s, w %g, alpha %g\n", q, cfg.Mode, cfg.Rule, cfg.W, cfg.Alpha)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tJOBS\tMEAN MS\tSPREAD MS\tPRIOR MS\tKENDALL TAU")
	for _, s := range stats {
		name := s.Task
		if name == "" {
			name = "(all)"
		}
		tau := "-"
		if qy, ok := rep.ByTask[s.Task]; ok && qy.Samples > 1 {
			tau = fmt.Sprintf("%.2f", qy.KendallTau)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.0f\t%s\n", name, s.Count, s.MeanMs, s.StdMs, s.Prior, tau)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cfg.Mode == ranking.ModeFIFO {
		fmt.Fprintln(w, "fifo mode learns nothing; switch to shadow to measure, active to use the learned order")
		return nil
	}
	o := rep.Overall
	fmt.Fprintf(w, "window: %d jobs, Kendall tau %.2f, Spearman %.2f, mean abs error %.1f ms (%.0f%%)\n",
		o.Samples, o.KendallTau, o.Spearman, o.MAEMs, o.MAPE*100)
	if est, err := sim.EstimateQueue(ctx, c, q, 1); err == nil && est.Jobs > 0 && est.FIFOMeanMs > 0 {
		fmt.Fprintf(w, "on those jobs, one slot: mean completion %.1f ms in fifo order, %.1f ms in the learned order (%.0f%%)\n",
			est.FIFOMeanMs, est.ActiveMeanMs, 100*est.ActiveMeanMs/est.FIFOMeanMs)
	}
	return nil
}

func cmdInfo(ctx context.Context, e *env, args []string) int {
	var watch time.Duration
	var asJSON bool
	var redisFlag *flag.Flag
	return opsCommand{synopsis: "info [--watch 2s] [--json]", least: 0, most: 0,
		flags: func(fs *flag.FlagSet) {
			redisFlag = fs.Lookup("redis")
			fs.Var((*durationValue)(&watch), "watch", "refresh at this interval (a `duration` such as 2s) until Ctrl-C, like top")
			fs.BoolVar(&asJSON, "json", false, "print JSON (once)")
		},
		run: func(ctx context.Context, e *env, c *queue.Client, _ []string) error {
			if !asJSON { // which Redis: an unset variable must not pass for an empty system
				where := Redact(redisFlag.Value.String())
				if e.connect != nil {
					where = "from the program's own client"
				}
				fmt.Fprintf(e.out, "redis %s, namespace %s\n\n", where, clientstore.Of(c).Namespace())
			}
			if watch <= 0 || asJSON {
				return info(ctx, e.out, c, asJSON)
			}
			wctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			t := time.NewTicker(watch)
			defer t.Stop()
			for {
				var b strings.Builder
				err := info(wctx, &b, c, false)
				if wctx.Err() != nil {
					return nil
				}
				fmt.Fprint(e.out, "\033[H\033[2J", time.Now().Format("15:04:05"), "  (Ctrl-C stops)\n\n", b.String())
				if err != nil {
					fmt.Fprintln(e.out, "error:", err)
				}
				select {
				case <-wctx.Done():
					return nil
				case <-t.C:
				}
			}
		}}.exec(ctx, e, args)
}

type infoQueue struct {
	Name    string                `json:"name"`
	Counts  queue.Counts          `json:"counts"`
	Ranking ranking.Config        `json:"ranking"`
	Fair    fairshare.Mode        `json:"fair_mode"`
	TopKeys []fairshare.KeyInfo   `json:"fair_keys,omitempty"` // the 5 with the most pending, when fair
	Recent  queue.ActivitySummary `json:"last_5_minutes"`
}

type infoReport struct {
	Queues  []infoQueue        `json:"queues"`
	Workers []queue.WorkerInfo `json:"workers"`
	Beat    []beat.Status      `json:"beat"`
}

func gatherInfo(ctx context.Context, c *queue.Client) (infoReport, error) {
	var r infoReport
	names, err := c.Queues(ctx)
	if err != nil {
		return r, err
	}
	for _, n := range names {
		counts, err := c.Counts(ctx, n)
		if err != nil {
			return r, err
		}
		rc, err := c.Ranking(ctx, n)
		if err != nil {
			return r, err
		}
		mins, err := c.Activity(ctx, n, 5)
		if err != nil {
			return r, err
		}
		iq := infoQueue{Name: n, Counts: counts, Ranking: rc, Recent: queue.Summarize(mins, time.Now())}
		if iq.Fair, err = c.FairMode(ctx, n); err != nil {
			return r, err
		}
		if iq.Fair != fairshare.ModeOff {
			if iq.TopKeys, _, err = c.FairKeys(ctx, n, 0, 5); err != nil {
				return r, err
			}
		}
		r.Queues = append(r.Queues, iq)
	}
	if r.Workers, err = c.Workers(ctx); err != nil {
		return r, err
	}
	sort.Slice(r.Workers, func(i, j int) bool { return r.Workers[i].ID < r.Workers[j].ID })
	if b, err := beat.New(c, beat.Config{}); err == nil {
		if r.Beat, err = b.List(ctx); err != nil {
			return r, err
		}
	}
	return r, nil
}

func info(ctx context.Context, w io.Writer, c *queue.Client, asJSON bool) error {
	r, err := gatherInfo(ctx, c)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tPENDING\tSCHEDULED\tACTIVE\tFAILED\tSUCCEEDED\tCANCELED\tDONE/MIN\tFAIL%\tWAIT MEAN\tRANKING\tFAIR\t")
	for _, q := range r.Queues {
		paused := ""
		if q.Counts.Paused {
			paused = "paused"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%s\t%s\t%s\t%s\n", q.Name, q.Counts.Pending, q.Counts.Scheduled,
			q.Counts.Active, q.Counts.Failed, q.Counts.Succeeded, q.Counts.Canceled, q.Recent.PerMinute, q.Recent.FailureRate*100,
			q.Recent.WaitMean.Round(100*time.Microsecond), q.Ranking.Mode, q.Fair, paused)
	}
	if len(r.Queues) == 0 {
		fmt.Fprintln(tw, "(no queue yet: enqueue a job)")
	}
	for _, q := range r.Queues {
		if len(q.TopKeys) > 0 {
			fmt.Fprintf(tw, "\nqueue %s, top fair keys by backlog:\n", q.Name)
			if err := tw.Flush(); err != nil {
				return err
			}
			if err := fairTable(w, q.TopKeys); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(tw, "\nWORKER\tHOST\tPID\tQUEUES\tCONCURRENCY\tSLOTS\tRUNNING\tUP\tHEARTBEAT\n")
	for _, wk := range r.Workers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%s\t%s ago\n", wk.ID, wk.Host, wk.PID, strings.Join(wk.Queues, ","),
			wk.Concurrency, wk.Slots, len(wk.Running), time.Since(wk.Started).Round(time.Second), time.Since(wk.Beat).Round(100*time.Millisecond))
	}
	if len(r.Workers) == 0 {
		fmt.Fprintln(tw, "(no live worker)")
	}
	if len(r.Beat) > 0 {
		fmt.Fprintln(tw)
		beatTable(tw, r.Beat)
	}
	return tw.Flush()
}

// beatTable writes beat entries as rows; times are shown in each entry's zone.
func beatTable(tw io.Writer, st []beat.Status) {
	fmt.Fprintf(tw, "BEAT ENTRY\tSPEC\tTASK\tQUEUE\tNEXT\tLAST FIRED\t\n")
	for _, s := range st {
		loc := time.UTC
		if l, err := time.LoadLocation(s.TimeZone); err == nil && s.TimeZone != "" {
			loc = l
		}
		show := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.In(loc).Format("2006-01-02 15:04:05 MST")
		}
		last := "-"
		if s.LastJob != nil { // a tick that fired, not the entry's starting point
			last = show(s.LastTick)
		}
		state := ""
		if s.Disabled {
			state = "disabled"
		}
		if s.Error != "" {
			state = "error: " + s.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Spec, s.Task, s.Queue, show(s.Next), last, state)
	}
}

func printBeat(w io.Writer, st []beat.Status) error {
	if len(st) == 0 {
		_, err := fmt.Fprintln(w, "no beat entry stored")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	beatTable(tw, st)
	return tw.Flush()
}
