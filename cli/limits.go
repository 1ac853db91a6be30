package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

const limitsSynopsis = "limits show QUEUE [--json] | limits set QUEUE task NAME|key|queue [--max-running N|none] [--rate SPEC|none] | " +
	"limits clear QUEUE task NAME|key|queue"

// optText is a flag that remembers whether it was given: a part of a limit that
// set does not name keeps its setting.
type optText struct {
	v   string
	set bool
}

func (o *optText) String() string { return o.v }

func (o *optText) Set(s string) error { o.v, o.set = s, true; return nil }

func (o *optText) ptr() *string {
	if !o.set {
		return nil
	}
	return &o.v
}

// cmdLimits is the fleet-wide limits of a queue: the list with their use, and a
// change to one of them (the same as POST /api/queues/{q}/limits makes). Every
// argument is checked before anything is changed.
func cmdLimits(ctx context.Context, e *env, args []string) int {
	var asJSON bool
	var most, rate optText
	return opsCommand{synopsis: limitsSynopsis, least: 2, most: 4,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print JSON (limits show)")
			fs.Var(&most, "max-running", fmt.Sprintf("limits set: at most `N` jobs running at once across every worker (1 to %d), or none to remove the cap", job.MaxRunningLimit))
			fs.Var(&rate, "rate", "limits set: how fast jobs start across every worker, a `SPEC` such as 100/s, 10/m or 5/h with an optional burst (100/s:20), or none to remove the rate")
		},
		check: func(pos []string) error { _, err := parseLimits(pos, asJSON, most, rate); return err },
		run: func(ctx context.Context, e *env, c *queue.Client, pos []string) error {
			op, err := parseLimits(pos, asJSON, most, rate)
			if err != nil {
				return err
			}
			if err := knownQueue(ctx, c, pos[1]); err != nil {
				return err
			}
			return op(ctx, e.out, c)
		}}.exec(ctx, e, args)
}

type limitsOp func(ctx context.Context, w io.Writer, c *queue.Client) error

// parseLimits reads the arguments into the operation they ask for.
func parseLimits(pos []string, asJSON bool, most, rate optText) (limitsOp, error) {
	use := badUsage("use: %s", limitsSynopsis)
	q := pos[1]
	if err := job.ValidateQueueName(q); err != nil {
		return nil, err
	}
	switch pos[0] {
	case "show":
		switch {
		case len(pos) != 2:
			return nil, use
		case most.set || rate.set:
			return nil, badUsage("--max-running and --rate go with limits set")
		}
		return func(ctx context.Context, w io.Writer, c *queue.Client) error {
			v, err := dashboard.QueueLimits(ctx, c, q)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(w, v)
			}
			return limitsTable(w, v)
		}, nil
	case "set", "clear":
		if len(pos) < 3 {
			return nil, badUsage("limits %s %s: name the limit: task NAME, key or queue", pos[0], q)
		}
		if asJSON {
			return nil, badUsage("--json goes with limits show")
		}
		ch := dashboard.LimitChange{Scope: pos[2], Clear: pos[0] == "clear"}
		if len(pos) == 4 {
			ch.Task = pos[3]
		}
		if pos[0] == "set" {
			ch.MaxRunning, ch.Rate = most.ptr(), rate.ptr()
			if ch.MaxRunning == nil && ch.Rate == nil {
				return nil, badUsage("limits set needs --max-running N or --rate SPEC (limits clear removes a limit)")
			}
		} else if most.set || rate.set {
			return nil, badUsage("limits clear removes the whole limit: it takes no --max-running or --rate (limits set ... --rate none removes only the rate)")
		}
		if err := ch.Check(); err != nil {
			return nil, err
		}
		return func(ctx context.Context, w io.Writer, c *queue.Client) error {
			l, err := ch.Apply(ctx, c, q)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "queue %s: %s: %s\n", q, limitName(l.Scope, l.Task), describeLimit(l))
			if l.Scope == job.ScopeTask && l.MaxRunning == 0 && l.Rate.IsZero() {
				fmt.Fprintln(w, "a limit the task declares (job.MaxRunning, job.RateLimit) is stored again when a worker declaring it starts")
			}
			if l.Scope == job.ScopeKey && (l.MaxRunning > 0 || !l.Rate.IsZero()) {
				return keyLimitNote(ctx, w, c, q)
			}
			return nil
		}, nil
	}
	return nil, use
}

// keyLimitNote says so when a per-key limit cannot act: it counts the jobs of each fair
// key, and with fair mode off jobs are not placed by key.
func keyLimitNote(ctx context.Context, w io.Writer, c *queue.Client, q string) error {
	m, err := c.FairMode(ctx, q)
	if err == nil && m == fairshare.ModeOff {
		fmt.Fprintf(w, "note: a per-key limit acts only in fair mode lru or share; queue %s is off (chronoq-worker fair mode %s share)\n", q, q)
	}
	return err
}

func limitName(scope job.LimitScope, task string) string {
	switch scope {
	case job.ScopeTask:
		return "task " + task
	case job.ScopeKey:
		return "each fair key"
	}
	return "the queue"
}

// describeLimit is a limit in words: "at most 3 running, rate 10/s:5".
func describeLimit(l job.Limit) string {
	switch {
	case l.MaxRunning > 0 && !l.Rate.IsZero():
		return fmt.Sprintf("at most %d running, rate %s", l.MaxRunning, l.Rate)
	case l.MaxRunning > 0:
		return fmt.Sprintf("at most %d running, no rate", l.MaxRunning)
	case !l.Rate.IsZero():
		return fmt.Sprintf("no cap, rate %s", l.Rate)
	}
	return "no limit"
}

// limitsTable writes a queue's limits as rows, then the fair keys running under the
// per-key limit.
func limitsTable(w io.Writer, v dashboard.LimitsView) error {
	if len(v.Limits) == 0 {
		_, err := fmt.Fprintf(w, "queue %s: no limits (chronoq-worker limits set %s task NAME --max-running N --rate SPEC)\n", v.Queue, v.Queue)
		return err
	}
	fmt.Fprintf(w, "queue %s: fair mode %s\n", v.Queue, v.FairMode)
	if v.KeyLimitIdle() {
		fmt.Fprintln(w, "note: the per-key limit acts only in fair mode lru or share")
	}
	tokens := func(t *float64, burst int) string {
		if t == nil {
			return "-"
		}
		return strconv.FormatFloat(*t, 'f', 1, 64) + "/" + strconv.Itoa(burst)
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tTASK/KEY\tCAP\tRUNNING\tRATE\tTOKENS\tSOURCE")
	key, hasKey := v.KeyLimit()
	for _, l := range v.Limits {
		name, running, toks := "-", "-", tokens(l.Tokens, l.Burst)
		capText := "-"
		if l.MaxRunning > 0 {
			capText = strconv.Itoa(l.MaxRunning)
			running = fmt.Sprintf("%d/%d", l.Running, l.MaxRunning)
		}
		switch l.Scope {
		case job.ScopeTask:
			name = l.Task
		case job.ScopeKey:
			name, running = "(each key)", "-" // each key's use is on its own row
			if l.Rate != "" {
				toks = "burst " + strconv.Itoa(l.Burst)
			}
		}
		src := "set"
		if l.Declared {
			src = "declared"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Scope, name, capText, running, dash(l.Rate), toks, src)
	}
	if hasKey {
		for _, k := range v.Keys {
			name := k.Key
			if name == "" {
				name = fairshare.DefaultKeyName
			}
			capText, running := "-", strconv.Itoa(k.Running)
			if key.MaxRunning > 0 {
				capText = strconv.Itoa(key.MaxRunning)
				running += "/" + capText
			}
			fmt.Fprintf(tw, "key\t%s\t%s\t%s\t%s\t%s\n", name, capText, running, dash(key.Rate), tokens(k.Tokens, key.Burst))
		}
	}
	return tw.Flush()
}
