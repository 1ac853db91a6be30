package worker_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
)

// TestConfigBounds: every number and duration of Config is bounded, so nothing computed
// from them overflows (the fetch loop sums the weights, New sizes a buffer by
// Concurrency); the error names the setting and its value.
func TestConfigBounds(t *testing.T) {
	e := newEnv(t, queue.Config{})
	qs := func(q ...worker.QueueConfig) []worker.QueueConfig { return q }
	cases := []struct {
		name string
		cfg  worker.Config
		want string // "" means valid
	}{
		{"defaults", worker.Config{}, ""},
		{"weights at the bound", worker.Config{Queues: qs(worker.QueueConfig{Name: "a", Weight: worker.MaxWeight}, worker.QueueConfig{Name: "b", Weight: 1})}, ""},
		{"weight max int64", worker.Config{Queues: qs(worker.QueueConfig{Name: "a", Weight: math.MaxInt64}, worker.QueueConfig{Name: "b", Weight: 1})},
			`queue "a": weight 9223372036854775807 is out of range (0 to 1000000`},
		{"weight one over", worker.Config{Queues: qs(worker.QueueConfig{Name: "a", Weight: worker.MaxWeight + 1})}, `queue "a": weight 1000001`},
		{"weight negative", worker.Config{Queues: qs(worker.QueueConfig{Name: "a", Weight: -2})}, `queue "a": weight -2`},
		{"queue cap max int64", worker.Config{Queues: qs(worker.QueueConfig{Name: "a", Concurrency: math.MaxInt64})}, `queue "a": concurrency 9223372036854775807`},
		{"queue cap negative", worker.Config{Queues: qs(worker.QueueConfig{Name: "a", Concurrency: -1})}, `queue "a": concurrency -1`},
		{"queue name with a colon", worker.Config{Queues: qs(worker.QueueConfig{Name: "a:1"})}, `Queue="a:1": has ':'`},
		{"concurrency at the bound", worker.Config{Concurrency: worker.MaxConcurrency}, ""},
		{"concurrency max int64", worker.Config{Concurrency: math.MaxInt64}, "Concurrency 9223372036854775807 is out of range (0 to 10000"},
		{"concurrency negative", worker.Config{Concurrency: -1}, "Concurrency -1"},
		{"batch size at the bound", worker.Config{BatchSize: worker.MaxBatchSize}, ""},
		{"batch size over", worker.Config{BatchSize: 5000}, "BatchSize 5000 is out of range (0 to 1000"},
		{"batch size negative", worker.Config{BatchSize: -1}, "BatchSize -1"},
		{"lease negative", worker.Config{Lease: -time.Second}, "Lease -1s"},
		{"lease too short", worker.Config{Lease: time.Millisecond}, "Lease 1ms is too short"},
		{"lease max int64", worker.Config{Lease: math.MaxInt64}, "Lease 2562047h47m16.854775807s is out of range"},
		{"shutdown timeout negative", worker.Config{ShutdownTimeout: -5 * time.Second}, "ShutdownTimeout -5s"},
		{"grace max int64", worker.Config{HardDeadlineGrace: math.MaxInt64}, "HardDeadlineGrace 2562047h47m16.854775807s"},
		{"idle block negative", worker.Config{IdleBlock: -time.Second}, "IdleBlock -1s"},
		{"heartbeat max int64", worker.Config{HeartbeatInterval: math.MaxInt64}, "HeartbeatInterval 2562047h47m16.854775807s"},
		{"max result at the bound", worker.Config{MaxResult: worker.MaxResultLimit}, ""},
		{"max result over", worker.Config{MaxResult: worker.MaxResultLimit + 1}, "MaxResult 4194305 is out of range (0 to 4194304 bytes; 0 means 524288)"},
		{"max result negative", worker.Config{MaxResult: -1}, "MaxResult -1"},
		{"autoscale", worker.Config{Autoscale: worker.Autoscale{Min: 4, Max: 64}}, ""},
		{"autoscale with its ceiling as concurrency", worker.Config{Concurrency: 64, Autoscale: worker.Autoscale{Min: 4, Max: 64}}, ""},
		{"autoscale of one size", worker.Config{Autoscale: worker.Autoscale{Min: 3, Max: 3}}, ""},
		{"autoscale at the bounds", worker.Config{Autoscale: worker.Autoscale{Min: 1, Max: worker.MaxConcurrency}}, ""},
		{"autoscale min over max", worker.Config{Autoscale: worker.Autoscale{Min: 8, Max: 4}}, "worker: Autoscale.Min 8 > Autoscale.Max 4"},
		{"autoscale without a max", worker.Config{Autoscale: worker.Autoscale{Min: 4}}, "worker: Autoscale.Min 4 > Autoscale.Max 0"},
		{"autoscale min zero", worker.Config{Autoscale: worker.Autoscale{Max: 4}}, "worker: Autoscale.Min 0 is below 1"},
		{"autoscale min negative", worker.Config{Autoscale: worker.Autoscale{Min: -1, Max: 4}}, "worker: Autoscale.Min -1 is below 1"},
		{"autoscale max over", worker.Config{Autoscale: worker.Autoscale{Min: 64, Max: 100000}}, "worker: Autoscale.Max 100000 is over MaxConcurrency (10000)"},
		{"autoscale and another concurrency", worker.Config{Concurrency: 10, Autoscale: worker.Autoscale{Min: 4, Max: 64}},
			"worker: Concurrency 10 differs from Autoscale.Max 64"},
		{"id", worker.Config{ID: "host-1.example_2:80"}, ""},
		{"id with a bar", worker.Config{ID: "host|1"}, `ID "host|1" holds '|', which separates the fields of a job's owner entry`},
		{"id of a bar", worker.Config{ID: "|"}, `ID "|" holds '|'`},
		{"durations at the bound", worker.Config{Lease: worker.MaxConfigDuration, ShutdownTimeout: worker.MaxConfigDuration,
			HardDeadlineGrace: worker.MaxConfigDuration, IdleBlock: worker.MaxConfigDuration, HeartbeatInterval: worker.MaxConfigDuration}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = quiet
			verr := tc.cfg.Validate()
			_, err := worker.New(e.c, tc.cfg)
			if tc.want == "" {
				if err != nil || verr != nil {
					t.Fatalf("New: %v; Validate: %v", err, verr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %q", err, tc.want)
			}
			if verr == nil || verr.Error() != err.Error() {
				t.Fatalf("Validate: %v, want New's error %v", verr, err)
			}
		})
	}
}
