package sim

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/ranking"
)

func TestOneSlotOrders(t *testing.T) {
	// one slot busy with a long job while a long and a short one queue behind it
	trace := []Job{
		{Offset: 0, Task: "long", Duration: 100 * time.Millisecond},
		{Offset: time.Millisecond, Task: "long", Duration: 100 * time.Millisecond},
		{Offset: 2 * time.Millisecond, Task: "short", Duration: 10 * time.Millisecond},
	}
	ctx := context.Background()
	fifo, err := Run(ctx, trace, Config{Slots: 1, Policy: PolicyFIFO})
	if err != nil {
		t.Fatal(err)
	}
	// fifo: 100, 199, 208
	if fifo.Completion[0] != 100 || fifo.Completion[1] != 199 || fifo.Completion[2] != 208 {
		t.Fatalf("fifo %v", fifo.Completion)
	}
	oracle, err := Run(ctx, trace, Config{Slots: 1, Policy: PolicyOracle})
	if err != nil {
		t.Fatal(err)
	}
	// oracle: the short job goes second: 100, 209, 108
	if oracle.Completion[2] != 108 || oracle.Completion[1] != 209 {
		t.Fatalf("oracle %v", oracle.Completion)
	}
	active, err := Run(ctx, trace, Config{Slots: 1, Policy: PolicyActive, Rule: ranking.RuleFixed, W: 4,
		Priors: map[string]float64{"long": 100, "short": 10}})
	if err != nil {
		t.Fatal(err)
	}
	if active.Completion[2] != 108 {
		t.Fatalf("active with priors %v", active.Completion)
	}
}

func TestLearnsAndBeatsFIFO(t *testing.T) {
	trace := SeedWorkload(600, 1, 0.8, 1)
	ctx := context.Background()
	fifo, err := Run(ctx, trace, Config{Slots: 1, Policy: PolicyFIFO})
	if err != nil {
		t.Fatal(err)
	}
	active, err := Run(ctx, trace, Config{Slots: 1, Policy: PolicyActive, Rule: ranking.RuleHRRN, W: 16})
	if err != nil {
		t.Fatal(err)
	}
	if !(active.MeanMs < fifo.MeanMs) || active.Tau < 0.5 {
		t.Fatalf("active mean %.0f vs fifo %.0f, tau %.2f", active.MeanMs, fifo.MeanMs, active.Tau)
	}
}

func TestTraceRoundTripAndErrors(t *testing.T) {
	jobs := SeedWorkload(20, 2, 0.8, 3)
	var buf bytes.Buffer
	if err := WriteTrace(&buf, jobs); err != nil {
		t.Fatal(err)
	}
	back, err := ReadTrace(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 20 || back[3].Task != jobs[3].Task || back[3].Cost["bytes"] != jobs[3].Cost["bytes"] {
		t.Fatalf("round trip %+v vs %+v", back[3], jobs[3])
	}
	bad := map[string]struct{ src, want string }{
		"no header":         {"", "no header"},
		"missing col":       {"offset_ms,task\n1,a\n", `lacks "duration_ms"`},
		"bad duration":      {"offset_ms,task,duration_ms\n1,a,x\n", `line 2: duration_ms "x" is not a number of ms from 0 to 315360000000`},
		"NaN duration":      {"offset_ms,task,duration_ms\n1,a,NaN\n", `duration_ms "NaN"`},
		"infinite duration": {"offset_ms,task,duration_ms\n1,a,+Inf\n", `duration_ms "+Inf"`},
		"huge duration":     {"offset_ms,task,duration_ms\n1,a,1e300\n", `duration_ms "1e300"`}, // wrapped to a negative Duration
		"huge offset":       {"offset_ms,task,duration_ms\n1e19,a,1\n", `offset_ms "1e19"`},
		"infinite cost":     {"offset_ms,task,duration_ms,cost_bytes\n1,a,1,inf\n", `cost_bytes "inf" is not a finite number`},
		"NaN cost":          {"offset_ms,task,duration_ms,cost_bytes\n1,a,1,nan\n", `cost_bytes "nan" is not a finite number`},
		"bad task":          {"offset_ms,task,duration_ms\n1,a b,3\n", "task"},
		"no jobs":           {"offset_ms,task,duration_ms\n", "no jobs"},
	}
	for name, tc := range bad {
		if _, err := ReadTrace(strings.NewReader(tc.src)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, tc.want)
		}
	}
	// columns in any order, and extra columns
	got, err := ReadTrace(strings.NewReader("task,duration_ms,offset_ms,cost_items,note\nx,5,10,3,hi\n"))
	if err != nil || got[0].Offset != 10*time.Millisecond || got[0].Cost["items"] != 3 {
		t.Fatalf("%+v %v", got, err)
	}
}
