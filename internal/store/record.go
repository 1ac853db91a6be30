package store

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/vmihailenco/msgpack/v5"
)

// record is the immutable part of a job as stored in Redis, encoded as a msgpack
// array (no field names) because every queued job pays for its size. In Redis it
// follows the job's lane member and a newline (see cutRecord).
type record struct {
	_msgpack struct{}           `msgpack:",as_array"` //lint:ignore U1000 read by msgpack through its tag
	Payload  []byte             `msgpack:"p"`
	Enqueued int64              `msgpack:"e"` // unix ms
	Retries  int                `msgpack:"r"`
	Timeout  int64              `msgpack:"t"` // ms, minus recordBaseTimeout (0, one byte, for most jobs)
	Keep     int64              `msgpack:"k"` // retention ms, minus recordBaseRetention
	Backoff  *job.Backoff       `msgpack:"b"` // nil: job.DefaultBackoff
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
	Fair   string `msgpack:"f,omitempty"` // the fair key
	Due    int64  `msgpack:"d,omitempty"` // unix ms
	LateBy int64  `msgpack:"l,omitempty"` // ms
}

// MarshalRecord encodes the parts of j that never change after enqueue. The queue,
// task and priority are not in it: they are in the keys that hold it.
func MarshalRecord(j *job.Job) ([]byte, error) {
	r := record{
		Payload:  j.Payload,
		Enqueued: j.EnqueuedAt.UnixMilli(),
		Retries:  j.Options.MaxRetries,
		Timeout:  (j.Options.Timeout - recordBaseTimeout).Milliseconds(),
		Keep:     (j.Options.Retention - recordBaseRetention).Milliseconds(),
		Cost:     j.Options.Cost,
	}
	if j.Options.Backoff != job.DefaultBackoff {
		b := j.Options.Backoff
		r.Backoff = &b
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(&r); err != nil {
		return nil, err
	}
	if x := (extras{Key: j.Options.Key, Fair: j.Options.FairKey, LateBy: j.Options.LateBy.Milliseconds()}); x.Key != "" || x.Fair != "" || x.LateBy > 0 {
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

// recordDecoder is a decoder with its reader and its destinations, pooled: the worker
// decodes one record per job it runs, and a fresh decoder, reader and record cost five
// allocations of the seven a decode made.
type recordDecoder struct {
	dec *msgpack.Decoder
	rd  bytes.Reader
	r   record
	x   extras
}

var recordDecoders = sync.Pool{New: func() any {
	d := &recordDecoder{}
	d.dec = msgpack.NewDecoder(&d.rd)
	return d
}}

// UnmarshalRecord fills j from a record made by MarshalRecord. A record it cannot
// read is an error wrapping job.ErrBadPayload.
func UnmarshalRecord(data []byte, j *job.Job) error {
	d := recordDecoders.Get().(*recordDecoder)
	defer func() {
		d.rd.Reset(nil) // hold on to neither the caller's bytes nor its job's parts
		d.r, d.x = record{}, extras{}
		recordDecoders.Put(d)
	}()
	d.rd.Reset(data)
	d.dec.Reset(&d.rd) // also clears any flags a decode left
	r, x := &d.r, &d.x
	if err := d.dec.Decode(r); err != nil {
		return fmt.Errorf("%w: job record: %v", job.ErrBadPayload, err)
	}
	if _, err := d.dec.PeekCode(); err == nil {
		if err := d.dec.Decode(x); err != nil {
			return fmt.Errorf("%w: job record extras: %v", job.ErrBadPayload, err)
		}
		lateBy, ok := durationOf(0, x.LateBy, 0, job.MaxHorizon)
		if !ok {
			return fmt.Errorf("%w: job record: SkipIfLate of %d ms", job.ErrBadPayload, x.LateBy)
		}
		j.Options.Key, j.Options.FairKey, j.Options.LateBy = x.Key, x.Fair, lateBy
		if x.Due > 0 {
			j.DueAt = time.UnixMilli(x.Due).UTC()
		}
	}
	j.Payload = r.Payload
	j.EnqueuedAt = time.UnixMilli(r.Enqueued).UTC()
	j.Options.MaxRetries = r.Retries
	timeout, ok := durationOf(recordBaseTimeout, r.Timeout, time.Millisecond, job.MaxTimeout)
	if !ok {
		return fmt.Errorf("%w: job record: timeout of %d ms past the base", job.ErrBadPayload, r.Timeout)
	}
	retention, ok := durationOf(recordBaseRetention, r.Keep, 0, job.MaxRetention)
	if !ok {
		return fmt.Errorf("%w: job record: retention of %d ms past the base", job.ErrBadPayload, r.Keep)
	}
	j.Options.Timeout, j.Options.Retention = timeout, retention
	j.Options.Backoff = job.DefaultBackoff
	if r.Backoff != nil {
		j.Options.Backoff = *r.Backoff
	}
	j.Options.Cost = r.Cost
	// the writer validated every option: one out of bounds is a damaged record, and a
	// worker must not run it with a retry count, backoff or cost nobody could set
	o := j.Options
	o.Queue = job.DefaultQueue // the queue is not in the record but in the keys holding it
	if err := o.Validate(); err != nil {
		return fmt.Errorf("%w: job record: %v", job.ErrBadPayload, err)
	}
	return nil
}

// durationOf is base + ms milliseconds when that lies in [lo, hi]. A record holds
// durations its writer validated, so one outside them is damaged; and a product that
// wrapped around would pass for a short, or negative, duration.
func durationOf(base time.Duration, ms int64, lo, hi time.Duration) (time.Duration, bool) {
	if ms < int64((lo-base)/time.Millisecond) || ms > int64((hi-base)/time.Millisecond) {
		return 0, false
	}
	return base + time.Duration(ms)*time.Millisecond, true
}
