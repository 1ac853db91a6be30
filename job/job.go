package job

import (
	"crypto/rand"
	"sync"
	"time"
)

// Job is one unit of work: what a worker's handler receives, and what the inspection
// API returns. Fields after Options are filled as far as the job has got.
type Job struct {
	ID         string
	Task       string
	Payload    []byte // msgpack-encoded arguments
	Options    Options
	EnqueuedAt time.Time

	State      State
	Attempt    int       // in a handler: this attempt, from 1; when inspected: attempts made
	LastError  string    // the error of the last failed attempt
	Stack      string    // the stack of the last panic, if any
	Result     []byte    // msgpack-encoded result of a succeeded job
	DueAt      time.Time // when a scheduled job comes due
	StartedAt  time.Time // when the current or last attempt started
	FinishedAt time.Time
	Worker     string // the worker holding an active job
}

// Decode decodes the job's payload into v, a pointer to the task's argument type.
func (j *Job) Decode(v any) error { return DecodeArgs(j.Payload, v) }

// DecodeResult decodes a succeeded job's result into v.
func (j *Job) DecodeResult(v any) error { return DecodeArgs(j.Result, v) }

// NewID returns a 16-character id that sorts by creation time (ms), so that jobs
// enqueued in the same millisecond keep their order inside a lane.
func NewID() string { return ids.next(time.Now()) }

const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz" // Crockford base32, lower case

type idSource struct {
	mu     sync.Mutex
	lastMs int64
	seq    uint64 // 35 random bits, incremented within one ms
}

var ids idSource

func (s *idSource) next(now time.Time) string {
	ms := now.UnixMilli()
	s.mu.Lock()
	if ms <= s.lastMs {
		ms = s.lastMs
		s.seq++
	} else {
		var b [8]byte
		_, _ = rand.Read(b[:])
		s.lastMs = ms
		s.seq = (uint64(b[0])<<32 | uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4])) >> 6 // 34 bits: room to count up
	}
	seq := s.seq
	s.mu.Unlock()
	var out [16]byte
	for i := 8; i >= 0; i-- { // 9 chars of ms: 45 bits
		out[i] = idAlphabet[ms&31]
		ms >>= 5
	}
	for i := 15; i >= 9; i-- { // 7 chars: 35 bits
		out[i] = idAlphabet[seq&31]
		seq >>= 5
	}
	return string(out[:])
}
