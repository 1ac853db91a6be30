package main

import (
	"fmt"
	"os"
	"strings"
)

// peerFlags are the flags of this program that the shared harness command line does not
// know; splitPeerFlags takes them out of os.Args before harness.ParseFlags reads it.
type peerFlags struct {
	System      string // "": chronoq against asynq; "river": River alone
	PG          string // PostgreSQL URL (River)
	RiverConfig string // River configs to run, comma-separated (a worker process: one)
}

const defaultPG = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// splitPeerFlags removes --system, --pg and --river-config (as "--name value" or
// "--name=value", one or two dashes) from os.Args and returns their values.
func splitPeerFlags() (peerFlags, error) {
	pf := peerFlags{PG: defaultPG, RiverConfig: "default,tuned"}
	dest := map[string]*string{"system": &pf.System, "pg": &pf.PG, "river-config": &pf.RiverConfig}
	kept := os.Args[:1:1]
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		p, ok := dest[name]
		if !strings.HasPrefix(a, "-") || !ok {
			kept = append(kept, a)
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				return pf, fmt.Errorf("flag --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		*p = value
	}
	os.Args = kept
	switch pf.System {
	case "", "river":
	default:
		return pf, fmt.Errorf("unknown --system %q (river, or none for chronoq against asynq)", pf.System)
	}
	return pf, nil
}
