package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
)

// Statistics that an older version or a damaged entry left in Redis (an infinite prior,
// a NaN mean) are shown as unknown: the ranking API answers 200 with a whole JSON body
// (it answered 200 with a body cut where the encoder met +Inf).
func TestRankingAPIWithDamagedStats(t *testing.T) {
	cl, c := setup(t, dashboard.Config{})
	ctx := context.Background()
	k := clientstore.Of(c).Keys("q")
	if err := clientstore.Of(c).Redis().HSet(ctx, k.TaskStats, "p:inf", "inf", "p:nan", "NaN", "t:mean", "3|inf|nan", "*", "4|nan|0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := clientstore.Of(c).Redis().LPush(ctx, k.Window, "mean|inf|5|0|0", "mean|5|inf|0|0").Err(); err != nil {
		t.Fatal(err)
	}
	code, data := cl.do("GET", "/api/queues/q/ranking", nil)
	var v struct {
		Tasks []map[string]any `json:"tasks"`
	}
	if code != 200 || json.Unmarshal(data, &v) != nil || len(v.Tasks) != 2 {
		t.Fatalf("ranking API: %d %s", code, data)
	}
	for _, ts := range v.Tasks {
		if ts["prior_ms"] != 0.0 || ts["mean_ms"] != 0.0 || ts["std_ms"] != 0.0 {
			t.Errorf("task %v: want every number 0 (unknown)", ts)
		}
	}
	if code, data := cl.do("GET", "/queues/q/ranking", nil); code != 200 {
		t.Fatalf("ranking page: %d %s", code, data)
	}
}

// A payload nested past job.MaxPayloadDepth is refused by the enqueue API with a 400
// naming the limit; one stored before the limit existed is shown as the reason and its
// size, not decoded (half a megabyte of nested arrays took 4.6 s and 888 MB to show).
func TestDeepPayloads(t *testing.T) {
	cl, c := setup(t, dashboard.Config{})
	ctx := context.Background()
	cl.token()
	deepJSON := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	code, data := cl.do("POST", "/api/queues/deep/jobs", map[string]any{"task": "t", "args": json.RawMessage(deepJSON)})
	if code != 400 || !bytes.Contains(data, []byte("deeper than 64 levels (job.MaxPayloadDepth)")) {
		t.Fatalf("enqueue of deep args: %d %s", code, data)
	}
	// stored as an older version would have: past every check
	deep := append(bytes.Repeat([]byte{0x91}, 1000), 0x01)
	rec, err := store.MarshalRecord(&job.Job{Payload: deep, Options: job.DefaultOptions(), EnqueuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	id := job.NewID()
	if err := clientstore.Of(c).Enqueue(ctx, "deep", []store.NewJob{{ID: id, Lane: store.LaneMember(5, "t"), Record: rec}}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/queues/deep/jobs?state=pending", "/api/queues/deep/jobs/" + id} {
		code, data := cl.do("GET", path, nil)
		if code != 200 || !bytes.Contains(data, []byte(`"error":"chronoq: undecodable payload: arrays and maps nest deeper than 64 levels (job.MaxPayloadDepth), at byte 64"`)) ||
			!bytes.Contains(data, []byte(`"bytes":1001`)) {
			t.Fatalf("%s: %d %.300s", path, code, data)
		}
	}
	if code, data := cl.do("GET", "/queues/deep/jobs/"+id, nil); code != 200 || !bytes.Contains(data, []byte("deeper than 64 levels")) {
		t.Fatalf("job page: %d", code)
	}
}
