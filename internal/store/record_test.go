package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/vmihailenco/msgpack/v5"
)

func TestRecordRoundTrip(t *testing.T) {
	o, err := job.DefaultOptions().Apply(job.MaxRetries(7), job.Timeout(time.Minute), job.Retention(0), job.Cost("bytes", 1024),
		job.WithBackoff(job.ConstantBackoff(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	in := &job.Job{Payload: []byte{0x91, 0x01}, Options: o, EnqueuedAt: time.UnixMilli(1_700_000_000_123).UTC()}
	data, err := MarshalRecord(in)
	if err != nil {
		t.Fatal(err)
	}
	var out job.Job
	if err := UnmarshalRecord(data, &out); err != nil {
		t.Fatal(err)
	}
	if string(out.Payload) != string(in.Payload) || !out.EnqueuedAt.Equal(in.EnqueuedAt) || out.Options.MaxRetries != 7 ||
		out.Options.Timeout != time.Minute || out.Options.Retention != 0 || out.Options.Cost["bytes"] != 1024 ||
		out.Options.Backoff != job.ConstantBackoff(time.Second) {
		t.Fatalf("round trip: %+v", out)
	}
	// the fair key rides in the extras, alone or beside a schedule key and SkipIfLate
	for _, extra := range [][]job.Option{{job.FairKey("tenant-42")}, {job.FairKey("Acme / café"), job.Key("k"), job.SkipIfLate(time.Hour)}} {
		o, err := job.DefaultOptions().Apply(extra...)
		if err != nil {
			t.Fatal(err)
		}
		in := &job.Job{Payload: []byte{0x90}, Options: o, EnqueuedAt: time.UnixMilli(1_700_000_000_123).UTC()}
		data, err := MarshalRecord(in)
		if err != nil {
			t.Fatal(err)
		}
		var out job.Job
		if err := UnmarshalRecord(data, &out); err != nil {
			t.Fatal(err)
		}
		if out.Options.FairKey != o.FairKey || out.Options.Key != o.Key || out.Options.LateBy != o.LateBy {
			t.Fatalf("round trip of %+v: fair key %q, key %q, late by %v", o, out.Options.FairKey, out.Options.Key, out.Options.LateBy)
		}
	}
	def, _ := MarshalRecord(&job.Job{Options: job.DefaultOptions(), EnqueuedAt: in.EnqueuedAt})
	if len(def) > 16 {
		t.Errorf("a no-op job's record is %d bytes; every queued job pays for it", len(def))
	}
}

// TestRecordGolden: records written by earlier versions still read back, and the same
// jobs still encode to the same bytes. Stored records outlive the code that wrote them,
// so these bytes must never change; a new field goes in a new test case.
func TestRecordGolden(t *testing.T) {
	enq := time.UnixMilli(1_767_225_600_123).UTC()
	opts := func(o ...job.Option) job.Options {
		out, err := job.DefaultOptions().Apply(o...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cases := []struct {
		name string
		job  *job.Job
		hex  string
	}{
		{"default", &job.Job{Options: job.DefaultOptions(), EnqueuedAt: enq},
			"97c0cf0000019b76daa87b030000c0c0"},
		{"payload and options", &job.Job{Payload: []byte{0x91, 0x01}, EnqueuedAt: enq, Options: opts(job.MaxRetries(7),
			job.Timeout(time.Minute), job.Retention(0), job.Cost("bytes", 1024), job.WithBackoff(job.ConstantBackoff(time.Second)))},
			"97c4029101cf0000019b76daa87b07d2ffe57320d2fff6d84084a162ce3b9aca00a166cb3ff0000000000000a16dce3b9aca00a16acb000000000000000081a56279746573cb4090000000000000"},
		{"key and late by", &job.Job{Payload: []byte{0xc0}, EnqueuedAt: enq, DueAt: enq.Add(time.Hour),
			Options: opts(job.Key("k1"), job.SkipIfLate(time.Minute))},
			"97c401c0cf0000019b76daa87b030000c0c083a16ba26b31a164cf0000019b771196fba16ccdea60"},
		{"key, due from a past At", &job.Job{EnqueuedAt: enq, Options: opts(job.Key("k2"), job.At(enq.Add(-time.Second)))},
			"97c0cf0000019b76daa87b030000c0c082a16ba26b32a164cf0000019b76daa493"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MarshalRecord(tc.job)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != tc.hex {
				t.Fatalf("encoded\n %x\nwant\n %s", got, tc.hex)
			}
			data, _ := hex.DecodeString(tc.hex)
			var back job.Job
			if err := UnmarshalRecord(data, &back); err != nil {
				t.Fatal(err)
			}
			want := tc.job
			o, w := back.Options, want.Options
			wantDue := want.DueAt
			if wantDue.IsZero() && w.Key != "" { // a keyed job's record keeps its due time
				wantDue = w.At
			}
			if !bytes.Equal(back.Payload, want.Payload) || !back.EnqueuedAt.Equal(want.EnqueuedAt) || !back.DueAt.Equal(wantDue) ||
				o.MaxRetries != w.MaxRetries || o.Timeout != w.Timeout || o.Retention != w.Retention ||
				o.Backoff != w.Backoff || o.Key != w.Key || o.LateBy != w.LateBy || !maps.Equal(o.Cost, w.Cost) {
				t.Fatalf("decoded %+v\nwant    %+v", back, *want)
			}
		})
	}
}

// BenchmarkUnmarshalRecord: the worker decodes one record per job it runs.
func BenchmarkUnmarshalRecord(b *testing.B) {
	data, err := MarshalRecord(&job.Job{Payload: []byte{0x92, 0x01, 0xa1, 'x'}, Options: job.DefaultOptions(), EnqueuedAt: time.UnixMilli(1_767_225_600_123)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var j job.Job
		if err := UnmarshalRecord(data, &j); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzUnmarshalRecord: a record read back from Redis (written by an older version, by
// hand, damaged) decodes or fails with job.ErrBadPayload, never panics; what decodes
// encodes again, and after one round trip a job comes back as it went in.
func FuzzUnmarshalRecord(f *testing.F) {
	for _, h := range []string{
		"97c0cf0000019b76daa87b030000c0c0",
		"97c4029101cf0000019b76daa87b07d2ffe57320d2fff6d84084a162ce3b9aca00a166cb3ff0000000000000a16dce3b9aca00a16acb000000000000000081a56279746573cb4090000000000000",
		"97c401c0cf0000019b76daa87b030000c0c083a16ba26b31a164cf0000019b771196fba16ccdea60",
		"97c0cf0000019b76daa87b030000c0c082a16ba26b32a164cf0000019b76daa493",
	} {
		data, _ := hex.DecodeString(h)
		f.Add(data)
		f.Add(data[:len(data)-1])
	}
	f.Add([]byte{})
	f.Add([]byte{0xc1})
	f.Add([]byte{0x90})
	f.Add([]byte{0x97, 0xc0, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xc0, 0xc1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var j1 job.Job
		if err := UnmarshalRecord(data, &j1); err != nil {
			if !errors.Is(err, job.ErrBadPayload) {
				t.Fatalf("UnmarshalRecord(% x): %v does not wrap job.ErrBadPayload", data, err)
			}
			return
		}
		again := func(in *job.Job) *job.Job {
			enc, err := MarshalRecord(in)
			if err != nil {
				t.Fatalf("MarshalRecord of what UnmarshalRecord(% x) read (%+v): %v", data, *in, err)
			}
			var out job.Job
			if err := UnmarshalRecord(enc, &out); err != nil {
				t.Fatalf("UnmarshalRecord(MarshalRecord(%+v)) = % x: %v", *in, enc, err)
			}
			return &out
		}
		j2 := again(&j1)
		if j3 := again(j2); fmt.Sprintf("%+v", *j3) != fmt.Sprintf("%+v", *j2) {
			t.Fatalf("round trip of what % x decodes to:\n got %+v\nwant %+v", data, *j3, *j2)
		}
	})
}

// A record whose durations are out of every writer's bounds is damaged, not a job with
// a wrapped-around timeout: a timeout of 2×(MaxInt64/1000) ms used to decode as 30 min,
// a SkipIfLate of MaxInt64/10 ms as −800 µs.
func TestRecordDurationsOutOfBounds(t *testing.T) {
	cases := []struct {
		name string
		r    record
		x    *extras
		want string
	}{
		{"timeout that would wrap", record{Timeout: math.MaxInt64 / 1000 * 2}, nil, "timeout"},
		{"timeout past a year", record{Timeout: int64((job.MaxTimeout-recordBaseTimeout)/time.Millisecond) + 1}, nil, "timeout"},
		{"timeout of zero", record{Timeout: -int64(recordBaseTimeout / time.Millisecond)}, nil, "timeout"},
		{"retention below zero", record{Keep: -int64(recordBaseRetention/time.Millisecond) - 1}, nil, "retention"},
		{"retention that would wrap", record{Keep: -math.MaxInt64 / 2}, nil, "retention"},
		{"skip-if-late that would wrap", record{}, &extras{Key: "k", LateBy: math.MaxInt64 / 10}, "SkipIfLate"},
		{"retries past the limit", record{Retries: job.MaxRetriesLimit + 1}, nil, "MaxRetries"},
		{"a year of timeout is fine", record{Timeout: int64((job.MaxTimeout - recordBaseTimeout) / time.Millisecond)}, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			enc := msgpack.NewEncoder(&buf)
			if err := enc.Encode(&tc.r); err != nil {
				t.Fatal(err)
			}
			if tc.x != nil {
				if err := enc.Encode(tc.x); err != nil {
					t.Fatal(err)
				}
			}
			var j job.Job
			err := UnmarshalRecord(buf.Bytes(), &j)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, job.ErrBadPayload) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decoded as timeout %v, retention %v, late by %v (err %v); want an error naming %s",
					j.Options.Timeout, j.Options.Retention, j.Options.LateBy, err, tc.want)
			}
		})
	}
}
