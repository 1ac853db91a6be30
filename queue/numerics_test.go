package queue_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

// Arguments nest at most job.MaxPayloadDepth arrays and maps, by every way in: JSON
// (EnqueueJSON, which the dashboard and the command line use), raw msgpack and bulk.
// The error names the limit, and nothing is stored.
func TestDeepArgsRefused(t *testing.T) {
	testutil.CheckLeaks(t)
	ctx := context.Background()
	c := queue.NewClient(redistest.Client(t), queue.Config{})
	t.Cleanup(func() { _ = c.Close() })
	deep := func(open, close string, n int) []byte {
		return []byte(strings.Repeat(open, n) + "1" + strings.Repeat(close, n))
	}
	objects := []byte(strings.Repeat(`{"k":`, job.MaxPayloadDepth+1) + "1" + strings.Repeat("}", job.MaxPayloadDepth+1))
	inString := []byte(`{"s":"` + strings.Repeat("[{", 500) + `\"[[["}`)
	const limit = "nest arrays and objects deeper than 64 levels (job.MaxPayloadDepth)"
	cases := []struct {
		name string
		json []byte
		want string // "" means enqueued
	}{
		{"arrays at the limit", deep("[", "]", job.MaxPayloadDepth), ""},
		{"arrays one past", deep("[", "]", job.MaxPayloadDepth+1), limit + ", at byte 64"},
		{"objects one past", objects, limit},
		{"half a megabyte of brackets", bytes.Repeat([]byte("["), 512<<10), limit},
		{"brackets inside a string", inString, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := "deep-" + strings.ReplaceAll(tc.name, " ", "-")
			_, err := c.EnqueueJSON(ctx, "t", tc.json, job.Queue(q))
			n, cerr := c.Counts(ctx, q)
			if cerr != nil {
				t.Fatal(cerr)
			}
			if tc.want == "" {
				if err != nil || n.Pending != 1 {
					t.Fatalf("%v, %d pending", err, n.Pending)
				}
				return
			}
			if !errors.Is(err, job.ErrBadPayload) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an ErrBadPayload naming %q", err, tc.want)
			}
			if n.Pending != 0 {
				t.Fatalf("%d pending after a refused enqueue", n.Pending)
			}
		})
	}
	// msgpack: one-element arrays, a byte a level, as deep as the size limit allows
	raw := append(bytes.Repeat([]byte{0x91}, 500<<10), 0x01)
	if _, err := c.EnqueueRaw(ctx, "t", raw, job.Queue("deep-raw")); !errors.Is(err, job.ErrBadPayload) ||
		!strings.Contains(err.Error(), "nest deeper than 64 levels (job.MaxPayloadDepth)") {
		t.Fatalf("raw: %v", err)
	}
	ok := append(bytes.Repeat([]byte{0x91}, job.MaxPayloadDepth), 0x01)
	_, err := c.EnqueueBatch(ctx, []queue.Request{{Task: "t", Payload: ok, Options: []job.Option{job.Queue("deep-raw")}},
		{Task: "t", Payload: raw, Options: []job.Option{job.Queue("deep-raw")}}})
	if !errors.Is(err, job.ErrBadPayload) || !strings.Contains(err.Error(), "request 1: ") {
		t.Fatalf("batch: %v", err)
	}
	if n, _ := c.Counts(ctx, "deep-raw"); n.Pending != 0 {
		t.Fatalf("%d pending after refused enqueues", n.Pending)
	}
}
