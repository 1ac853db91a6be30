package job

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
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

// record is the immutable part of a job as stored in Redis, encoded as a msgpack
// array (no field names) because every queued job pays for its size.
type record struct {
	_msgpack struct{}           `msgpack:",as_array"` //lint:ignore U1000 read by msgpack through its tag
	Payload  []byte             `msgpack:"p"`
	Enqueued int64              `msgpack:"e"` // unix ms
	Retries  int                `msgpack:"r"`
	Timeout  int64              `msgpack:"t"` // ms, minus recordBaseTimeout (0, one byte, for most jobs)
	Keep     int64              `msgpack:"k"` // retention ms, minus recordBaseRetention
	Backoff  *Backoff           `msgpack:"b"` // nil: DefaultBackoff
	Cost     map[string]float64 `msgpack:"c"`
}

// The bases a record's timeout and retention are stored against: part of the record
// format, so never to change (even if the defaults do). Equal to today's defaults, so an
// ordinary job stores zeros, one byte each.
const (
	recordBaseTimeout   = 30 * time.Minute
	recordBaseRetention = 10 * time.Minute
)

// extras are the rarely set parts of a record, encoded after the record's array only
// when one of them is set, so an ordinary job pays nothing for them.
type extras struct {
	Key    string `msgpack:"k,omitempty"`
	Due    int64  `msgpack:"d,omitempty"` // unix ms
	LateBy int64  `msgpack:"l,omitempty"` // ms
}

// MarshalRecord encodes the parts of j that never change after enqueue. The queue,
// task and priority are not in it: they are in the keys that hold it.
func MarshalRecord(j *Job) ([]byte, error) {
	r := record{
		Payload:  j.Payload,
		Enqueued: j.EnqueuedAt.UnixMilli(),
		Retries:  j.Options.MaxRetries,
		Timeout:  (j.Options.Timeout - recordBaseTimeout).Milliseconds(),
		Keep:     (j.Options.Retention - recordBaseRetention).Milliseconds(),
		Cost:     j.Options.Cost,
	}
	if j.Options.Backoff != DefaultBackoff {
		b := j.Options.Backoff
		r.Backoff = &b
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(&r); err != nil {
		return nil, err
	}
	if x := (extras{Key: j.Options.Key, LateBy: j.Options.LateBy.Milliseconds()}); x.Key != "" || x.LateBy > 0 {
		switch {
		case !j.DueAt.IsZero():
			x.Due = j.DueAt.UnixMilli()
		case !j.Options.At.IsZero(): // asked for a time already past: due then
			x.Due = j.Options.At.UnixMilli()
		default:
			x.Due = j.EnqueuedAt.UnixMilli()
		}
		if err := enc.Encode(&x); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// UnmarshalRecord fills j from a record made by MarshalRecord.
func UnmarshalRecord(data []byte, j *Job) error {
	var r record
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("%w: job record: %v", ErrBadPayload, err)
	}
	var x extras
	if _, err := dec.PeekCode(); err == nil {
		if err := dec.Decode(&x); err != nil {
			return fmt.Errorf("%w: job record extras: %v", ErrBadPayload, err)
		}
		j.Options.Key, j.Options.LateBy = x.Key, time.Duration(x.LateBy)*time.Millisecond
		if x.Due > 0 {
			j.DueAt = time.UnixMilli(x.Due).UTC()
		}
	}
	j.Payload = r.Payload
	j.EnqueuedAt = time.UnixMilli(r.Enqueued).UTC()
	j.Options.MaxRetries = r.Retries
	j.Options.Timeout = recordBaseTimeout + time.Duration(r.Timeout)*time.Millisecond
	j.Options.Retention = recordBaseRetention + time.Duration(r.Keep)*time.Millisecond
	j.Options.Backoff = DefaultBackoff
	if r.Backoff != nil {
		j.Options.Backoff = *r.Backoff
	}
	j.Options.Cost = r.Cost
	return nil
}

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
