package harness

import (
	"os"
	"runtime/pprof"
	"syscall"
)

// processCPUNs is this process's CPU time so far, user and system.
func processCPUNs() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// StartProfile writes a CPU profile of this process to the file named by
// CHRONOQ_BENCH_CPUPROFILE, if set, until the returned stop is called: a worker
// process's profile of one drain (go tool pprof FILE). CHRONOQ_BENCH_MEMPROFILE names
// a file for the allocation profile written at stop (go tool pprof -sample_index
// alloc_objects FILE).
func StartProfile() (stop func()) {
	if mem := os.Getenv("CHRONOQ_BENCH_MEMPROFILE"); mem != "" {
		return func() {
			f, err := os.Create(mem)
			if err != nil {
				Fail(err)
			}
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				Fail(err)
			}
			_ = f.Close()
		}
	}
	path := os.Getenv("CHRONOQ_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		Fail(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		Fail(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
