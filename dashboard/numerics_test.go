package dashboard_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/chronoq/chronoq/dashboard"
)

// Statistics that an older version or a damaged entry left in Redis (an infinite prior,
// a NaN mean) are shown as unknown: the ranking API answers 200 with a whole JSON body
// (it answered 200 with a body cut where the encoder met +Inf).
func TestRankingAPIWithDamagedStats(t *testing.T) {
	cl, c := setup(t, dashboard.Config{})
	ctx := context.Background()
	k := c.Store().Keys("q")
	if err := c.Store().Redis().HSet(ctx, k.TaskStats, "p:inf", "inf", "p:nan", "NaN", "t:mean", "3|inf|nan", "*", "4|nan|0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store().Redis().LPush(ctx, k.Window, "mean|inf|5|0|0", "mean|5|inf|0|0").Err(); err != nil {
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
