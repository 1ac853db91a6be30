package store

import (
	"context"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestSmokeEnqueueFetchAck(t *testing.T) {
	ctx := context.Background()
	s := New(redistest.Client(t), "t", nil)
	jobs := []NewJob{
		{ID: "a1", Lane: "5:x", Record: []byte("r1")},
		{ID: "a2", Lane: "5:y", Record: []byte("r2")},
		{ID: "a3", Lane: "9:x", Record: []byte("r3")},
		{ID: "a4", Lane: "5:x", Record: []byte("r4"), Due: time.Now().Add(time.Hour)},
	}
	if err := s.Enqueue(ctx, "q", jobs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Fetch(ctx, "q", "w1", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != "a3" {
		t.Fatalf("fetch: %+v", got)
	}
	lost, err := s.Ack(ctx, "q", "w1", []Done{{ID: "a3", Retention: time.Minute}, {ID: "a1"}, {ID: "a2"}})
	if err != nil || len(lost) != 0 {
		t.Fatal(err, lost)
	}
	c, err := s.Counts(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if c.Scheduled != 1 || c.Succeeded != 1 || c.Pending != 0 || c.Processed != 3 {
		t.Fatalf("counts %+v", c)
	}
}
