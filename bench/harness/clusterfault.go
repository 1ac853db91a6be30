package harness

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chronoq/chronoq/internal/clusterfault"
)

// ClusterFault runs the cluster-fault scenario (internal/clusterfault) repeat times,
// each on a fresh 3-master cluster: one worker serves a queue on a healthy master and
// one on a master that is paused for 3 s, then killed for 3 s and started again,
// while jobs are enqueued on both (one every 10 ms on the healthy queue). The worker
// runs in this process: the run measures isolation, not throughput. It prints a
// "# run" line per run and returns
//
//	BENCH cluster_fault healthy_p99_ms=A recovered_ms=B
//
// with the medians of the runs: A is the healthy queue's enqueue-to-start p99 through
// both faults, B the later of the faulty queue's two recoveries (from its master's
// return to the first job of that queue started).
func ClusterFault(ctx context.Context, repeat int, progress func(string)) (string, error) {
	var p99s, recs []float64
	for r := 0; r < max(repeat, 1); r++ {
		res, err := clusterfault.Run(ctx, clusterfault.Config{})
		if err != nil {
			return "", err
		}
		if len(res.Problems) > 0 {
			return "", fmt.Errorf("cluster_fault: %s", strings.Join(res.Problems, "; "))
		}
		rec := max(res.Recovered[clusterfault.Paused], res.Recovered[clusterfault.Down])
		p99s = append(p99s, ms(res.P(0.99)))
		recs = append(recs, ms(rec))
		progress(fmt.Sprintf("# run %d: healthy jobs=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f; recovered after pause_ms=%.0f down_ms=%.0f; faulty jobs ran=%d lost_with_data=%d",
			r+1, len(res.Healthy), ms(res.P(0.5)), ms(res.P(0.99)), ms(res.P(1)),
			ms(res.Recovered[clusterfault.Paused]), ms(res.Recovered[clusterfault.Down]), res.FaultyRan, res.FaultyLost))
	}
	return fmt.Sprintf("BENCH cluster_fault healthy_p99_ms=%.2f recovered_ms=%.0f", median(p99s), median(recs)), nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
