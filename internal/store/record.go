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
		j.Options.Key, j.Options.FairKey, j.Options.LateBy = x.Key, x.Fair, time.Duration(x.LateBy)*time.Millisecond
		if x.Due > 0 {
			j.DueAt = time.UnixMilli(x.Due).UTC()
		}
	}
	j.Payload = r.Payload
	j.EnqueuedAt = time.UnixMilli(r.Enqueued).UTC()
	j.Options.MaxRetries = r.Retries
	j.Options.Timeout = recordBaseTimeout + time.Duration(r.Timeout)*time.Millisecond
	j.Options.Retention = recordBaseRetention + time.Duration(r.Keep)*time.Millisecond
	j.Options.Backoff = job.DefaultBackoff
	if r.Backoff != nil {
		j.Options.Backoff = *r.Backoff
	}
	j.Options.Cost = r.Cost
	return nil
}
