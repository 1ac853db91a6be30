package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/chronoq/chronoq/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestLearnedOrderExample(t *testing.T) {
	var out bytes.Buffer
	res, err := run(context.Background(), redistest.Client(t), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	for _, want := range []string{"learned in shadow mode", "media.transcode  mean", "active / fifo = "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// fifo is arrival order (the backlog's jobs are a millisecond apart, so no two tie)
	var arrival []string
	for _, r := range mix(backlogRounds) {
		arrival = append(arrival, r.Task)
	}
	if !slices.Equal(res.FIFO.Order, arrival) {
		t.Errorf("fifo started %v, want arrival order %v", res.FIFO.Order, arrival)
	}
	// active takes every short job before any long one: a transcode wins only when
	// overdue, 16 × 200 ms after its arrival, far beyond this run
	lastAnalyze := -1
	firstTranscode := slices.Index(res.Active.Order, "media.transcode")
	for i, task := range res.Active.Order {
		if task == "media.analyze" {
			lastAnalyze = i
		}
	}
	if lastAnalyze > firstTranscode {
		t.Errorf("active started an analyze after a transcode: %v", res.Active.Order)
	}
	// the expected ratio is about 0.4 (a simulation of this backlog gives 0.40); 0.85
	// leaves room for a loaded machine's scheduling noise
	ratio := float64(res.Active.Mean) / float64(res.FIFO.Mean)
	if ratio >= 0.85 {
		t.Errorf("active mean completion %s is %.2f × fifo's %s, want < 0.85", res.Active.Mean, ratio, res.FIFO.Mean)
	}
}
