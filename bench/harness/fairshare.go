package harness

import (
	"math"
	"sort"
	"time"
)

// FairRecord is one job of the fair bench as a worker process saw it: its fair key, when
// it was enqueued, when its handler started and when it ended (Unix ns, one machine clock).
type FairRecord struct {
	Key     string
	EnqNs   int64
	StartNs int64
	EndNs   int64
}

// span is a half-open interval [from, to) in ns.
type span struct{ from, to int64 }

// backlogs returns, per key, the merged intervals over which the key was backlogged:
// at every instant of them some job of the key was enqueued and not yet started.
func backlogs(recs []FairRecord) map[string][]span {
	byKey := map[string][]span{}
	for _, r := range recs {
		if r.StartNs > r.EnqNs {
			byKey[r.Key] = append(byKey[r.Key], span{r.EnqNs, r.StartNs})
		}
	}
	out := make(map[string][]span, len(byKey))
	for k, ss := range byKey {
		sort.Slice(ss, func(i, j int) bool { return ss[i].from < ss[j].from })
		merged := []span{ss[0]}
		for _, s := range ss[1:] {
			last := &merged[len(merged)-1]
			if s.from <= last.to {
				last.to = max(last.to, s.to)
				continue
			}
			merged = append(merged, s)
		}
		out[k] = merged
	}
	return out
}

// covers reports whether one of the merged spans holds all of [from, to).
func covers(ss []span, from, to int64) bool {
	i := sort.Search(len(ss), func(i int) bool { return ss[i].to >= to })
	return i < len(ss) && ss[i].from <= from
}

// slidingSteps is how many window starts SlidingShareError tries per window length.
const slidingSteps = 10

// SlidingShareError is ShareError's largest value over windows starting every
// window/slidingSteps from origin: fixed windows made the figure hang on where the
// heavy backlog happened to end against a window's edge (0.03 in one run, 20 in the
// next, with the same order).
func SlidingShareError(recs []FairRecord, origin int64, window time.Duration, weights map[string]float64) (shareErr float64, ok bool) {
	step := window.Nanoseconds() / slidingSteps
	for i := int64(0); i < slidingSteps; i++ {
		if e, o := ShareError(recs, origin+i*step, window, weights); o && (!ok || e > shareErr) {
			shareErr, ok = e, true
		}
	}
	return shareErr, ok
}

// ShareError is the fair bench's share_error: over the windows [origin + i·window,
// origin + (i+1)·window) that end by the last job's end, keep those in which at least two
// keys are backlogged for the whole window (set B); a key's measured time U_k is the
// overlap of its jobs' [start, end) with the window, its ideal is w_k/Σ_B w · U_B with
// U_B = Σ_B U_k (weights: 1 for a key not in the map); the answer is the largest
// |U_k − ideal_k| / ideal_k. ok is false when no window qualifies (print NA, not 0).
func ShareError(recs []FairRecord, origin int64, window time.Duration, weights map[string]float64) (shareErr float64, ok bool) {
	w := window.Nanoseconds()
	if w <= 0 || len(recs) == 0 {
		return 0, false
	}
	var last int64
	for _, r := range recs {
		last = max(last, r.EndNs)
	}
	n := int((last - origin) / w)
	if n <= 0 {
		return 0, false
	}
	// measured time per key and window, in one pass over the jobs
	used := map[string][]float64{}
	for _, r := range recs {
		from, to := max(r.StartNs, origin), min(r.EndNs, origin+int64(n)*w)
		if to <= from {
			continue
		}
		u := used[r.Key]
		if u == nil {
			u = make([]float64, n)
			used[r.Key] = u
		}
		for i := (from - origin) / w; i < int64(n); i++ {
			a, b := origin+i*w, origin+(i+1)*w
			if a >= to {
				break
			}
			u[i] += float64(min(b, to) - max(a, from))
		}
	}
	weight := func(k string) float64 {
		if x, ok := weights[k]; ok {
			return x
		}
		return 1
	}
	bl := backlogs(recs)
	keys := make([]string, 0, len(bl))
	for k := range bl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i := 0; i < n; i++ {
		a, b := origin+int64(i)*w, origin+int64(i+1)*w
		var in []string
		uB, wB := 0.0, 0.0
		for _, k := range keys {
			if covers(bl[k], a, b) {
				in = append(in, k)
				if u := used[k]; u != nil {
					uB += u[i]
				}
				wB += weight(k)
			}
		}
		if len(in) < 2 || uB <= 0 || wB <= 0 {
			continue
		}
		ok = true
		for _, k := range in {
			uk := 0.0
			if u := used[k]; u != nil {
				uk = u[i]
			}
			ideal := weight(k) / wB * uB
			shareErr = math.Max(shareErr, math.Abs(uk-ideal)/ideal)
		}
	}
	return shareErr, ok
}

// BackloggedRate is how many jobs of key ended per second over the time the key was
// backlogged (heavy_jobs_per_s); 0 when it never was.
func BackloggedRate(recs []FairRecord, key string) float64 {
	ss := backlogs(recs)[key]
	var total int64
	for _, s := range ss {
		total += s.to - s.from
	}
	if total <= 0 {
		return 0
	}
	done := 0
	for _, r := range recs {
		if r.Key != key {
			continue
		}
		i := sort.Search(len(ss), func(i int) bool { return ss[i].to >= r.EndNs })
		if i < len(ss) && ss[i].from <= r.EndNs {
			done++
		}
	}
	return float64(done) / (float64(total) / 1e9)
}
