package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestQuickstartExample(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	var out bytes.Buffer
	if err := run(ctx, rdb, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		`quickstart.greet -> "Hello, Ada!"`,
		"charge attempt 1: gateway timeout",
		"charge attempt 2: gateway timeout",
		`"charged ada 4200 cents on attempt 3" after 3 attempts`,
		`quickstart.greet -> "Hello, Grace!"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}

	// what the output claims is what Redis holds
	c := queue.NewClient(rdb, queue.Config{})
	defer c.Close()
	n, err := c.Counts(ctx, job.DefaultQueue)
	if err != nil {
		t.Fatal(err)
	}
	if n.Succeeded != 3 || n.Retried != 2 || n.Failed != 0 || n.Pending+n.Scheduled+n.Active != 0 {
		t.Errorf("counts %+v, want 3 succeeded after 2 retries and nothing left", n)
	}
	done, err := c.List(ctx, job.DefaultQueue, job.StateSucceeded, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	// a succeeded job's record keeps no due time, so the delayed one is found by its args
	delayed := 0
	for _, j := range done {
		var a GreetArgs
		if j.Task != greet.Name() || j.Decode(&a) != nil || a.Name != "Grace" {
			continue
		}
		delayed++
		if waited := j.StartedAt.Sub(j.EnqueuedAt); waited < delay {
			t.Errorf("the delayed job started %s after enqueue, before its delay of %s", waited, delay)
		}
	}
	if delayed != 1 {
		t.Errorf("%d succeeded delayed greetings, want 1", delayed)
	}
}
