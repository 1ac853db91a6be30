package harness

import (
	"math"
	"testing"
	"time"
)

const sec = int64(time.Second)

// ran is a job of key that ran [from, to) seconds and started as soon as it was enqueued.
func ran(key string, from, to float64) FairRecord {
	s, e := int64(from*float64(sec)), int64(to*float64(sec))
	return FairRecord{Key: key, EnqNs: s, StartNs: s, EndNs: e}
}

// waiting is a job of key enqueued at from that started at to (ran for no time): it keeps
// the key backlogged over [from, to).
func waiting(key string, from, to float64) FairRecord {
	s, e := int64(from*float64(sec)), int64(to*float64(sec))
	return FairRecord{Key: key, EnqNs: s, StartNs: e, EndNs: e}
}

func TestShareError(t *testing.T) {
	na := math.NaN()
	for _, c := range []struct {
		name    string
		recs    []FairRecord
		weights map[string]float64
		want    float64 // NaN: no window qualifies
	}{
		{"equal shares", []FairRecord{
			waiting("a", 0, 10), waiting("b", 0, 10),
			ran("a", 0, 5), ran("a", 5, 10), ran("b", 0, 5), ran("b", 5, 10),
		}, nil, 0},
		{"3:1 split between two backlogged keys", []FairRecord{
			waiting("a", 0, 5), waiting("b", 0, 5),
			ran("a", 0, 5), ran("a", 0, 5), ran("a", 0, 5), ran("b", 0, 5),
		}, nil, 0.5},
		{"one backlogged key", []FairRecord{
			waiting("a", 0, 10),
			ran("a", 0, 10), ran("b", 0, 1), ran("b", 2, 3), ran("b", 4, 10),
		}, nil, na},
		{"3:1 split at weights 3:1", []FairRecord{
			waiting("a", 0, 5), waiting("b", 0, 5),
			ran("a", 0, 5), ran("a", 0, 5), ran("a", 0, 5), ran("b", 0, 5),
		}, map[string]float64{"a": 3}, 0},
		{"a job spanning windows counts in each by its overlap", []FairRecord{
			waiting("a", 0, 10), waiting("b", 0, 10),
			ran("a", 2.5, 7.5), ran("a", 0, 2.5), ran("a", 7.5, 10), ran("b", 0, 10),
		}, nil, 0},
		{"a window with a key backlogged for part of it does not count", []FairRecord{
			waiting("a", 0, 10), waiting("b", 0, 7), // b: windows [0,5) only
			ran("a", 0, 5), ran("b", 0, 5), // [0,5): equal
			ran("a", 5, 10), ran("a", 5, 10), ran("a", 5, 10), ran("b", 5, 6), // [5,10): b not backlogged throughout
		}, nil, 0},
		{"a backlogged key that got nothing", []FairRecord{
			waiting("a", 0, 5), waiting("b", 0, 5), waiting("c", 0, 5),
			ran("a", 0, 5), ran("b", 0, 5),
		}, nil, 1},
		{"the last partial window is left out", []FairRecord{
			waiting("a", 0, 9), waiting("b", 0, 9),
			ran("a", 0, 5), ran("b", 0, 5), ran("a", 5, 9), // [5,9) is not a whole window
		}, nil, 0},
		{"gaps between a key's pending jobs break its backlog", []FairRecord{
			waiting("a", 0, 5), waiting("b", 0, 2), waiting("b", 3, 5),
			ran("a", 0, 5), ran("b", 2, 3),
		}, nil, na},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := ShareError(c.recs, 0, 5*time.Second, c.weights)
			if math.IsNaN(c.want) {
				if ok {
					t.Fatalf("share_error = %v, want NA", got)
				}
				return
			}
			if !ok || math.Abs(got-c.want) > 1e-9 {
				t.Fatalf("share_error = %v (ok %v), want %v", got, ok, c.want)
			}
		})
	}
}

func TestBackloggedRate(t *testing.T) {
	// backlogged [0, 2 s): 4 jobs end in it, one after it
	recs := []FairRecord{waiting("h", 0, 2), ran("h", 0, 0.5), ran("h", 0.5, 1), ran("h", 1, 1.5), ran("h", 1.5, 2), ran("h", 2, 2.5), ran("l", 0, 1)}
	if got := BackloggedRate(recs, "h"); math.Abs(got-2.5) > 1e-9 { // 5 of them end in [0, 2]: the waiting one at 2
		t.Fatalf("rate = %v, want 2.5", got)
	}
	if got := BackloggedRate(recs, "l"); got != 0 {
		t.Fatalf("rate of a key never backlogged = %v, want 0", got)
	}
}

// The sliding figure does not hang on window edges: a 9:1 split between two backlogged
// keys over [2 s, 7 s) falls across two fixed windows, each with one key backlogged
// only part of the time (so neither qualifies), but inside one of the sliding windows.
func TestSlidingShareError(t *testing.T) {
	recs := []FairRecord{
		waiting("a", 2, 7), waiting("b", 2, 7),
		ran("a", 2, 6.5), ran("b", 6.5, 7),
	}
	if _, ok := ShareError(recs, 0, 5*time.Second, nil); ok {
		t.Fatal("a fixed window qualified; the case no longer tests the edges")
	}
	got, ok := SlidingShareError(recs, 0, 5*time.Second, nil)
	if !ok || math.Abs(got-0.8) > 1e-9 { // a: 4.5 s of 5, ideal 2.5: |4.5−2.5|/2.5
		t.Fatalf("sliding share_error = %v (ok %v), want 0.8", got, ok)
	}
}
