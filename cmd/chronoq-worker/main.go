// Command chronoq-worker runs chronoq workers and operates queues. The shipped binary
// runs the demo tasks; to run your own tasks, write a 10-line main that calls cli.Main
// with a func that registers them (see package cli).
package main

import (
	"os"

	"github.com/chronoq/chronoq/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], nil)) }
