package queue_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

// ValidateBatch is EnqueueBatch's own check: for every kind of bad request it names the
// same request with the same error, and neither stores anything.
func TestValidateBatchIsEnqueueBatchsCheck(t *testing.T) {
	testutil.CheckLeaks(t)
	ctx := context.Background()
	c := queue.NewClient(redistest.Client(t), queue.Config{MaxPayload: 1024})
	t.Cleanup(func() { _ = c.Close() })
	opts := []job.Option{job.Queue("v")}
	good := queue.Request{Task: "t", Payload: []byte{0x01}, Options: opts}
	cases := []struct {
		name string
		bad  queue.Request
		is   error
		want string
	}{
		{"task name", queue.Request{Task: "a task", Options: opts}, job.ErrInvalidOption, `Task="a task"`},
		{"payload over the limit", queue.Request{Task: "t", Payload: append([]byte{0xc5, 0x04, 0x01}, make([]byte, 1025)...), Options: opts},
			job.ErrBadPayload, "payload of 1028 bytes is over the 1024 byte limit"},
		{"payload not msgpack", queue.Request{Task: "t", Payload: []byte{0xc1}, Options: opts}, job.ErrBadPayload, "not msgpack"},
		{"payload too deep", queue.Request{Task: "t", Payload: append(bytes.Repeat([]byte{0x91}, 65), 0x01), Options: opts},
			job.ErrBadPayload, "deeper than 64 levels"},
		{"option", queue.Request{Task: "t", Options: append(opts, job.Priority(12))}, job.ErrInvalidOption, "Priority=12"},
		{"at past the horizon", queue.Request{Task: "t", Options: append(opts, job.At(time.Now().AddDate(11, 0, 0)))},
			job.ErrInvalidOption, "is more than 10 years ahead"},
		{"at in the past, refused", queue.Request{Task: "t", Options: append(opts, job.At(time.Now().Add(-time.Hour)), job.RejectPast())},
			job.ErrInvalidOption, "is in the past (RejectPast)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reqs := []queue.Request{good, good, tc.bad, good}
			verr := c.ValidateBatch(ctx, reqs)
			var re *queue.RequestError
			if !errors.As(verr, &re) || re.Index != 2 || !errors.Is(verr, tc.is) || !strings.Contains(verr.Error(), tc.want) {
				t.Fatalf("ValidateBatch: %v, want a *RequestError for request 2 naming %q", verr, tc.want)
			}
			_, eerr := c.EnqueueBatch(ctx, reqs)
			if eerr == nil || eerr.Error() != verr.Error() {
				t.Fatalf("EnqueueBatch: %v, want ValidateBatch's %v", eerr, verr)
			}
			// alone: ValidateBatch still names its index, EnqueueBatch gives its own error
			verr = c.ValidateBatch(ctx, []queue.Request{tc.bad})
			if !errors.As(verr, &re) || re.Index != 0 || re.Err.Error() != strings.TrimPrefix(verr.Error(), "request 0: ") {
				t.Fatalf("ValidateBatch of one: %v", verr)
			}
			if _, eerr := c.EnqueueBatch(ctx, []queue.Request{tc.bad}); eerr == nil || eerr.Error() != re.Err.Error() {
				t.Fatalf("EnqueueBatch of one: %v, want %v", eerr, re.Err)
			}
			if n, _ := c.Counts(ctx, "v"); n.Pending != 0 || n.Scheduled != 0 {
				t.Fatalf("%d pending, %d scheduled after refused batches", n.Pending, n.Scheduled)
			}
		})
	}
	if err := c.ValidateBatch(ctx, []queue.Request{good, good}); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Counts(ctx, "v"); n.Pending != 0 {
		t.Fatalf("ValidateBatch stored %d jobs", n.Pending)
	}
}
