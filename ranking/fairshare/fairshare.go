package fairshare

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"time"
)

// Mode is a queue's fairness between keys.
type Mode string

// The modes.
const (
	// ModeOff: no fairness; the queue's order is as if no job had a key.
	ModeOff Mode = "off"
	// ModeLRU: the key served least recently goes first, scaled by weight
	// (celery-ranch's rule, counted in jobs).
	ModeLRU Mode = "lru"
	// ModeShare: weighted fair share of worker time (start-time fair queueing,
	// charged the predicted run time at start and corrected by the actual one).
	ModeShare Mode = "share"
)

// ErrBadMode is the error of an unknown mode.
var ErrBadMode = errors.New("chronoq: unknown fairness mode")

// ParseMode reads a mode by its name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeOff, ModeLRU, ModeShare:
		return m, nil
	}
	return "", fmt.Errorf("%w %q (want off, lru or share)", ErrBadMode, s)
}

// ErrBadSetting is the error of a key's setting out of bounds: a tag, a lateness.
var ErrBadSetting = errors.New("chronoq: bad fair-share setting")

// KeyInfo is one fair key of a queue as the key view shows it.
type KeyInfo struct {
	Key        string            `json:"key"` // "" is the default key (jobs without one)
	Pending    int64             `json:"pending"`
	Running    int               `json:"running"` // leases held: a worker frees a slot before its batched ack lands
	Weight     float64           `json:"weight"`
	LateBy     time.Duration     `json:"late_by_ns,omitempty"` // the default SkipIfLate of its jobs
	Tags       map[string]string `json:"tags,omitempty"`
	LastServed time.Time         `json:"last_served,omitzero"`
	// Share is the key's share of the worker time its queue's fair-placed jobs used,
	// decayed over about a minute (0 to 1); UsedMs is that time in ms.
	Share  float64 `json:"share"`
	UsedMs float64 `json:"used_ms"`
}

// DefaultKeyName is how the default key (that of jobs without a fair key, stored as "")
// is named where a name must be shown or typed: views, the CLI, the dashboard.
const DefaultKeyName = "(default)"

// Bounds of a key's weight. A weight of 2 is twice the share of a weight of 1.
const (
	MinWeight     = 0.01
	MaxWeight     = 100.0
	DefaultWeight = 1.0
)

// QuantumMs is the length of a visit in share mode, in charge per weight (ms of
// predicted worker time): a key is visited when it has the smallest tag, and the visit
// takes its jobs while its tag has moved less than QuantumMs. Jobs far shorter than a
// millisecond are then taken several per visit, which costs the dequeue script one
// read, one tag write and one count per visit rather than per job (docs/fairshare.md,
// "What changed from the plan"); the price is 2 × QuantumMs more on the pairwise
// bound. Jobs whose charge per weight is a millisecond or more go one per visit, as with no quantum. lru
// counts jobs and has no quantum: it is strict.
const QuantumMs = 1

// ErrBadWeight is the error of a weight out of bounds.
var ErrBadWeight = errors.New("chronoq: bad fair-share weight")

// CheckWeight checks a key's weight: a finite number in [MinWeight, MaxWeight].
// (Written so that NaN fails: every comparison with NaN is false.)
func CheckWeight(w float64) error {
	if !(w >= MinWeight && w <= MaxWeight) {
		return fmt.Errorf("%w %v: must be a number from %v to %v", ErrBadWeight, w, MinWeight, MaxWeight)
	}
	return nil
}

// Model is the reference order of one priority band: the order the dequeue script
// keeps in Redis, written plainly, so that tests (and the simulator) can hold the
// script to it.
//
// Each backlogged key has a start tag S. The next job comes from the backlogged key
// with the smallest (S, key) — key names compared as bytes, so ties go the same way
// everywhere. Starting a job of charge c (share: its predicted run time; lru: 1)
// moves the key's tag to S + c/w, and the band's virtual time V to S. A key that
// becomes backlogged starts at max(its last finish tag, V): an idle key banks no
// credit, and a new key goes ahead of every key already served this round. When the
// band has no backlogged key it is idle: V and every finish tag reset to 0.
//
// The bound (start-time fair queueing, Goyal et al. 1996, Theorem 1): while keys f and
// m are both backlogged, the charges of the jobs started from them over any run of
// starts, S_f and S_m, satisfy |S_f/w_f − S_m/w_m| ≤ ĉ_f/w_f + ĉ_m/w_m, where ĉ is
// the largest charge of a job of that key in the run. It holds whatever the number of
// slots, since it is a property of the order of starts.
//
// The quantum (share mode): a key is visited when it has the smallest (S, key), and
// the visit goes on while its tag has moved less than QuantumMs since the visit began
// (a job of charge per weight QuantumMs or more ends it). Every backlogged key's tag
// then stays within QuantumMs + ĉ/w of the smallest, and the bound above grows by
// 2 × QuantumMs (each key of the pair may be a quantum into a visit at either end).
type Model struct {
	mode    Mode
	v       float64
	keys    map[string]*keyState
	backlog keyHeap
	cur     *keyState // the key of the visit under way, while it stays within the quantum
	from    float64   // cur's tag when its visit began
}

// quantum is how far one visit may move its key's tag.
func (m *Model) quantum() float64 {
	if m.mode == ModeShare {
		return QuantumMs
	}
	return 0
}

// within reports whether k, the key of the visit under way, stays the next key: its
// tag has moved less than the quantum since the visit began.
func (m *Model) within(k *keyState) bool { return k.tag < m.from+m.quantum() }

// next is the key whose job starts next; the backlog is not empty.
// It only reads: Next may be called any number of times between starts.
func (m *Model) next() (k *keyState, visiting bool) {
	if c := m.cur; c != nil && c.index >= 0 && m.within(c) {
		return c, true
	}
	return m.backlog[0], false // a visit a correction took past its quantum is over
}

type keyState struct {
	name    string
	weight  float64
	tag     float64 // start tag while backlogged; finish tag while idle
	pending int
	index   int // in the backlog heap; -1 when idle
}

// NewModel returns an empty band in mode (lru or share).
func NewModel(mode Mode) (*Model, error) {
	if mode != ModeLRU && mode != ModeShare {
		return nil, fmt.Errorf("%w %q: the model orders lru or share", ErrBadMode, mode)
	}
	return &Model{mode: mode, keys: map[string]*keyState{}}, nil
}

func (m *Model) key(name string) *keyState {
	k := m.keys[name]
	if k == nil {
		k = &keyState{name: name, weight: DefaultWeight, index: -1}
		m.keys[name] = k
	}
	return k
}

// SetWeight sets key's weight (CheckWeight); it applies from the key's next start.
func (m *Model) SetWeight(key string, w float64) error {
	if err := CheckWeight(w); err != nil {
		return err
	}
	m.key(key).weight = w
	return nil
}

// Arrive adds one pending job of key.
func (m *Model) Arrive(key string) {
	k := m.key(key)
	k.pending++
	if k.index < 0 {
		k.tag = math.Max(k.tag, m.v)
		heap.Push(&m.backlog, k)
	}
}

// Next is the key whose job starts next, or false when none is pending.
func (m *Model) Next() (string, bool) {
	if len(m.backlog) == 0 {
		return "", false
	}
	k, _ := m.next()
	return k.name, true
}

// Charge is what starting a job charged its key: Done corrects it.
type Charge struct {
	Key    string
	Cost   float64 // share: the predicted ms charged; lru: 1
	Weight float64 // the key's weight when it started
}

// Start starts the next job (of the key Next names), charged predicted ms in share
// mode (at least 0.01 ms; an unknown or non-finite prediction counts as 1 ms) and 1
// in lru mode. Call it only when Next reports a key.
func (m *Model) Start(predicted float64) Charge {
	k, visiting := m.next()
	if !visiting {
		m.from = k.tag // a new visit
	}
	ch := Charge{Key: k.name, Cost: 1, Weight: k.weight}
	if m.mode == ModeShare {
		ch.Cost = chargeOf(predicted)
	}
	m.v = math.Max(m.v, k.tag)
	k.tag += ch.Cost / ch.Weight
	k.pending--
	m.cur = nil
	if k.pending == 0 {
		heap.Remove(&m.backlog, k.index)
	} else {
		heap.Fix(&m.backlog, k.index)
		if m.within(k) {
			m.cur = k // decided now, as the script decides it when its batch ends
		}
	}
	if len(m.backlog) == 0 {
		m.idle()
	}
	return ch
}

func chargeOf(predicted float64) float64 {
	if !(predicted >= 0) || math.IsInf(predicted, 0) { // a learned 0 is tiny, as the script has it
		return 1
	}
	return math.Max(predicted, 0.01)
}

// Done corrects a started job's charge by its actual run time in ms (share mode; lru
// counts jobs, not time): the key's tag moves by (ran − charged)/weight. A key whose
// band went idle since is owed nothing: its correction is dropped.
func (m *Model) Done(ch Charge, ran float64) {
	if m.mode != ModeShare || !(ran >= 0) || math.IsInf(ran, 0) {
		return
	}
	k := m.keys[ch.Key]
	if k == nil || (k.index < 0 && k.tag == 0) {
		return
	}
	k.tag += (ran - ch.Cost) / ch.Weight
	if k.index >= 0 {
		heap.Fix(&m.backlog, k.index)
	}
}

// idle resets a band with no backlogged key: nothing is owed between keys that have
// nothing waiting.
func (m *Model) idle() {
	m.v, m.cur = 0, nil
	for name, k := range m.keys {
		k.tag = 0
		if k.weight == DefaultWeight {
			delete(m.keys, name) // the memory of a key with no jobs is reclaimed
		}
	}
}

// Tag is key's tag (start tag while backlogged, finish tag while idle) and the band's
// virtual time, for tests.
func (m *Model) Tag(key string) (tag, v float64) {
	if k := m.keys[key]; k != nil {
		return k.tag, m.v
	}
	return 0, m.v
}

// Keys is how many keys the model holds state for (backlogged ones, and idle ones
// with a weight set or not yet reset).
func (m *Model) Keys() int { return len(m.keys) }

// keyHeap orders backlogged keys by (tag, name as bytes).
type keyHeap []*keyState

func (h keyHeap) Len() int { return len(h) }
func (h keyHeap) Less(i, j int) bool {
	if h[i].tag != h[j].tag {
		return h[i].tag < h[j].tag
	}
	return h[i].name < h[j].name
}
func (h keyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *keyHeap) Push(x any) {
	k := x.(*keyState)
	k.index = len(*h)
	*h = append(*h, k)
}
func (h *keyHeap) Pop() any {
	old := *h
	k := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	k.index = -1
	return k
}
