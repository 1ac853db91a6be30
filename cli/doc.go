// Package cli is the command line of chronoq-worker, importable so that a user's own
// main can hand its registered tasks to the same entry point and get every subcommand:
//
//	func main() {
//		os.Exit(cli.Main(os.Args[1:], func(w *worker.Worker) {
//			worker.Handle(w, tasks.Resize, resize)
//		}))
//	}
//
// MainWith also takes a func that opens Redis, for client settings a URL cannot
// express; every subcommand then uses it.
package cli
