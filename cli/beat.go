package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

// cmdBeat runs a beat: the entries of --config (stored in Redis, where every replica
// sees them) plus any stored there already. Run as many replicas as you like.
func cmdBeat(ctx context.Context, e *env, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "list", "enable", "disable", "delete":
			return cmdBeatEntries(ctx, e, args[0], args[1:])
		}
	}
	fs := newFlags(e, "beat", "beat --config beat.yaml   (run a beat)\n       chronoq-worker beat list | enable NAME | disable NAME | delete NAME")
	var cf connFlags
	cf.add(fs, e)
	config := fs.String("config", envOr("CHRONOQ_BEAT_CONFIG", ""), "YAML file of beat entries (env CHRONOQ_BEAT_CONFIG)")
	if _, err := parseArgs(fs, args, 0, 0); err != nil {
		return flagExit(err)
	}
	entries, err := loadBeatFile(*config)
	if err != nil {
		// every bad entry is named; the good ones still run, unless there is none
		fmt.Fprintln(e.err, "chronoq-worker beat:", err)
		if len(entries) == 0 {
			return ExitUsage
		}
	}
	rdb, err := cf.connect(ctx)
	if err != nil {
		fmt.Fprintln(e.err, "chronoq-worker beat:", err)
		return ExitFailure
	}
	defer rdb.Close()
	log := cf.logger(e.err)
	c := queue.NewClient(rdb, queue.Config{Namespace: cf.namespace, Logger: log})
	defer c.Close()
	if err := declareEntryQueues(ctx, c, entries); err != nil {
		return e.fail(err)
	}
	b, err := beat.New(c, beat.Config{Entries: entries, Logger: log})
	if err != nil {
		fmt.Fprintln(e.err, "chronoq-worker beat:", err)
		return ExitUsage
	}
	runCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("beat started", "redis", Redact(cf.url), "entries from file", len(entries))
	if err := b.Run(runCtx); err != nil {
		fmt.Fprintln(e.err, "chronoq-worker beat:", err)
		return ExitFailure
	}
	log.Info("beat stopped")
	return ExitOK
}

func loadBeatFile(path string) ([]beat.Entry, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return beat.LoadFile(f)
}

// startBeat runs a beat beside a worker (run --beat): every worker can carry one.
func startBeat(ctx context.Context, c *queue.Client, path string, log *slog.Logger) (func(), error) {
	entries, err := loadBeatFile(path)
	if err != nil {
		if len(entries) == 0 {
			return nil, err
		}
		log.Error("some beat entries were refused; the others run", "err", err)
	}
	if err := declareEntryQueues(ctx, c, entries); err != nil {
		return nil, err
	}
	b, err := beat.New(c, beat.Config{Entries: entries, Logger: log})
	if err != nil {
		return nil, err
	}
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(bctx) }()
	log.Info("beat started in the worker", "entries from file", len(entries))
	return func() { cancel(); <-done }, nil
}

// declareEntryQueues declares the queues a beat file names: the file is the operator's
// word that they exist, so a beat started before any worker does not refuse them.
func declareEntryQueues(ctx context.Context, c *queue.Client, entries []beat.Entry) error {
	for _, en := range entries {
		q := en.Queue
		if q == "" {
			q = job.DefaultQueue
		}
		if err := c.DeclareQueue(ctx, q); err != nil {
			return fmt.Errorf("entry %q: queue %q: %w", en.Name, q, err)
		}
	}
	return nil
}

// cmdBeatEntries lists or changes the stored entries; every running beat sees a change
// at once.
func cmdBeatEntries(ctx context.Context, e *env, verb string, args []string) int {
	least := 1
	if verb == "list" {
		least = 0
	}
	var asJSON bool
	return opsCommand{synopsis: "beat " + verb + map[bool]string{true: "", false: " NAME"}[verb == "list"], least: least, most: least,
		flags: func(fs *flag.FlagSet) {
			if verb == "list" {
				fs.BoolVar(&asJSON, "json", false, "print JSON")
			}
		},
		run: func(ctx context.Context, e *env, c *queue.Client, pos []string) error {
			b, err := beat.New(c, beat.Config{})
			if err != nil {
				return err
			}
			if verb == "list" {
				st, err := b.List(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(e.out, st)
				}
				return printBeat(e.out, st)
			}
			switch verb {
			case "enable":
				err = b.Enable(ctx, pos[0])
			case "disable":
				err = b.Disable(ctx, pos[0])
			case "delete":
				err = b.Delete(ctx, pos[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.out, "beat entry %s: %s\n", pos[0], map[string]string{"enable": "enabled", "disable": "disabled", "delete": "deleted"}[verb])
			return nil
		}}.exec(ctx, e, args)
}
