package main

import (
	"context"
	"fmt"
	"os"

	"github.com/chronoq/chronoq/bench/harness"
)

// runFair runs `bench fair`: a bad or unbuilt --mode or a bad --heavy-ms exits 2 before
// any redis-server starts; then one BENCH line per (mode, heavy_ms).
func runFair(f harness.Flags) {
	if f.Mode == "keys" { // only the fetch-scale line
		harness.Fail(fair(f, harness.FairOptions{Repeat: f.Repeat, Duration: f.Duration}))
		return
	}
	modes, err := harness.ParseFairModes(f.Mode)
	heavy, err2 := harness.ParseHeavyMs(f.HeavyMs)
	for _, e := range []error{err, err2} {
		if e != nil {
			fmt.Fprintln(os.Stderr, "bench:", e)
			os.Exit(2)
		}
	}
	harness.Fail(fair(f, harness.FairOptions{Modes: modes, HeavyMs: heavy, Duration: f.Duration, Repeat: f.Repeat}))
}

func fair(f harness.Flags, o harness.FairOptions) error {
	rdb, url, stop, err := f.Connect()
	if err != nil {
		return err
	}
	defer stop() // before Fail exits: no redis-server is left behind
	defer rdb.Close()
	progress := func(s string) { fmt.Println(s) }
	lines, err := harness.Fair(context.Background(), rdb, url, o, []string{"child-fair"}, progress)
	for _, l := range lines {
		fmt.Println(l)
	}
	if err != nil || (f.Mode != "" && f.Mode != "keys") {
		return err
	}
	// and the fetch rate at 100,000 backlogged keys against 10
	line, err := harness.FairKeysScale(context.Background(), rdb, 100000, f.Repeat, progress)
	if err == nil {
		fmt.Println(line)
	}
	return err
}
