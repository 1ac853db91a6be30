package sim

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SeedWorkload is the workload of the scheduler chronoq replaces: 5 task types with
// log-normal run times (σ = 0.4) around medians exp(3.0, 4.5, 5.0, 6.0, 7.5) ms, times a
// payload factor exp(0.3 × log1p(bytes/1000)) with bytes uniform in [100, 10000] (given
// as the cost hint "bytes"), Poisson arrivals at load on slots slots.
func SeedWorkload(n, slots int, load float64, seed uint64) []Job {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	medians := []float64{3.0, 4.5, 5.0, 6.0, 7.5}
	jobs := make([]Job, n)
	for i := range jobs {
		t := r.IntN(len(medians))
		bytes := 100 + r.Float64()*9900
		ms := math.Exp(medians[t]+0.4*r.NormFloat64()) * math.Exp(0.3*math.Log1p(bytes/1000))
		jobs[i] = Job{Task: fmt.Sprintf("type%d", t+1), Duration: ms2d(ms), Cost: map[string]float64{"bytes": math.Round(bytes)}}
	}
	return poisson(jobs, slots, load, r)
}

// W3 is three task types with Pareto(α = 1.5) sizes of minimum 1, 5 and 25 ms, capped at
// 2 s, Poisson arrivals at load on slots slots: sizes inside a type are unpredictable.
func W3(n, slots int, load float64, seed uint64) []Job {
	r := rand.New(rand.NewPCG(seed, 0x3333))
	mins := []float64{1, 5, 25}
	jobs := make([]Job, n)
	for i := range jobs {
		t := r.IntN(len(mins))
		ms := math.Min(mins[t]/math.Pow(1-r.Float64(), 1/1.5), 2000)
		jobs[i] = Job{Task: fmt.Sprintf("w3-%d", t+1), Duration: ms2d(ms)}
	}
	return poisson(jobs, slots, load, r)
}

// Bursty re-times a trace's arrivals into on/off phases: all arrivals fall in "on"
// phases half as long as the cycle, at twice the rate, with the same average load.
func Bursty(jobs []Job, cycle time.Duration) []Job {
	out := append([]Job(nil), jobs...)
	for i := range out {
		t := out[i].Offset
		out[i].Offset = t/cycle*cycle + (t%cycle)/2 // each cycle's arrivals in its first half
	}
	return out
}

// Drift swaps the run times of two task types for the second half of the trace.
func Drift(jobs []Job, a, b string) []Job {
	out := append([]Job(nil), jobs...)
	sorted := append([]Job(nil), jobs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Offset < sorted[j].Offset })
	mid := sorted[len(sorted)/2].Offset
	mean := map[string]float64{}
	count := map[string]float64{}
	for _, j := range jobs {
		mean[j.Task] += ms(j.Duration)
		count[j.Task]++
	}
	for t := range mean {
		mean[t] /= count[t]
	}
	for i := range out {
		if out[i].Offset < mid {
			continue
		}
		switch out[i].Task {
		case a:
			out[i].Duration = ms2d(ms(out[i].Duration) * mean[b] / mean[a])
		case b:
			out[i].Duration = ms2d(ms(out[i].Duration) * mean[a] / mean[b])
		}
	}
	return out
}

// poisson gives jobs Poisson arrivals at load on slots, from the sample's own mean.
func poisson(jobs []Job, slots int, load float64, r *rand.Rand) []Job {
	total := 0.0
	for _, j := range jobs {
		total += ms(j.Duration)
	}
	mean := total / float64(len(jobs))
	rate := load * float64(slots) / mean // arrivals per ms
	t := 0.0
	for i := range jobs {
		t += r.ExpFloat64() / rate
		jobs[i].Offset = ms2d(t)
	}
	return jobs
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// maxTraceMs bounds a trace's offsets and durations: ten years, as job.MaxHorizon
// bounds a delay, far inside time.Duration (292 years).
const maxTraceMs = 10 * 365 * 24 * 3600 * 1000.0

func ms2d(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond))
}

// WriteTrace writes jobs as CSV: offset_ms,task,duration_ms and a cost_<name> column per
// cost hint name found.
func WriteTrace(w io.Writer, jobs []Job) error {
	names := map[string]bool{}
	for _, j := range jobs {
		for k := range j.Cost {
			names[k] = true
		}
	}
	var costs []string
	for k := range names {
		costs = append(costs, k)
	}
	sort.Strings(costs)
	cw := csv.NewWriter(w)
	head := []string{"offset_ms", "task", "duration_ms"}
	for _, c := range costs {
		head = append(head, "cost_"+c)
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	for _, j := range jobs {
		row := []string{strconv.FormatFloat(ms(j.Offset), 'f', 3, 64), j.Task, strconv.FormatFloat(ms(j.Duration), 'f', 3, 64)}
		for _, c := range costs {
			v, ok := j.Cost[c]
			if ok {
				row = append(row, strconv.FormatFloat(v, 'g', -1, 64))
			} else {
				row = append(row, "")
			}
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ReadTrace reads a CSV trace with the header offset_ms,task,duration_ms and optional
// cost_<name> columns, in any order. Errors name the line and column.
func ReadTrace(r io.Reader) ([]Job, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("trace: no header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(h)] = i
	}
	for _, need := range []string{"offset_ms", "task", "duration_ms"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("trace: the header lacks %q (want offset_ms,task,duration_ms[,cost_<name>...])", need)
		}
	}
	var jobs []Job
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("trace line %d: %w", line, err)
		}
		num := func(name string) (float64, error) {
			v, err := strconv.ParseFloat(strings.TrimSpace(rec[col[name]]), 64)
			if err != nil || !(v >= 0 && v <= maxTraceMs) { // NaN fails it
				return 0, fmt.Errorf("trace line %d: %s %q is not a number of ms from 0 to %.0f (10 years)", line, name, rec[col[name]], maxTraceMs)
			}
			return v, nil
		}
		off, err := num("offset_ms")
		if err != nil {
			return nil, err
		}
		dur, err := num("duration_ms")
		if err != nil {
			return nil, err
		}
		task := strings.TrimSpace(rec[col["task"]])
		if task == "" || strings.ContainsAny(task, " {}") {
			return nil, fmt.Errorf("trace line %d: task %q must be a name without spaces or braces", line, task)
		}
		j := Job{Offset: ms2d(off), Task: task, Duration: ms2d(dur)}
		for name, i := range col {
			if c, ok := strings.CutPrefix(name, "cost_"); ok && strings.TrimSpace(rec[i]) != "" {
				v, err := strconv.ParseFloat(strings.TrimSpace(rec[i]), 64)
				if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, fmt.Errorf("trace line %d: %s %q is not a finite number", line, name, rec[i])
				}
				if j.Cost == nil {
					j.Cost = map[string]float64{}
				}
				j.Cost[c] = v
			}
		}
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("trace: no jobs")
	}
	return jobs, nil
}

// Scale multiplies every offset and duration by f (a 40-minute trace replays in 2 at
// f = 0.05).
func Scale(jobs []Job, f float64) []Job {
	out := append([]Job(nil), jobs...)
	for i := range out {
		out[i].Offset = time.Duration(float64(out[i].Offset) * f)
		out[i].Duration = time.Duration(float64(out[i].Duration) * f)
	}
	return out
}
