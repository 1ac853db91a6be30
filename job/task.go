package job

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Task is a task type: its wire name, its argument type A and its default options.
// Declare it once in a package that both the producer and the worker import.
type Task[A any] struct {
	name string
	opts []Option
}

// NewTask declares a task named name whose arguments are an A. The name, not the Go
// type, identifies the task on the wire, so it can be enqueued by name from
// elsewhere. NewTask panics on an invalid name: tasks are declared at init time.
func NewTask[A any](name string, opts ...Option) *Task[A] {
	if err := ValidateTaskName(name); err != nil {
		panic(err)
	}
	return &Task[A]{name: name, opts: opts}
}

// Name is the task's wire name.
func (t *Task[A]) Name() string { return t.name }

// Options are the task's default enqueue options.
func (t *Task[A]) Options() []Option { return t.opts }

// Encode turns args into the msgpack payload a job carries.
func (t *Task[A]) Encode(args A) ([]byte, error) { return EncodeArgs(args) }

// Decode turns a job's payload into the task's argument type.
func (t *Task[A]) Decode(payload []byte) (A, error) {
	var a A
	if err := DecodeArgs(payload, &a); err != nil {
		return a, fmt.Errorf("args of task %q do not fit %T: %w", t.name, a, err)
	}
	return a, nil
}

// EncodeArgs encodes any msgpack-able value as a payload.
func EncodeArgs(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	enc.SetCustomStructTag("json")
	enc.UseCompactInts(true)
	enc.UseCompactFloats(true)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%w: encode args: %v", ErrBadPayload, err)
	}
	return buf.Bytes(), nil
}

// DecodeArgs decodes a payload into v (a pointer). An empty payload leaves v as it is.
func DecodeArgs(payload []byte, v any) error {
	if len(payload) == 0 {
		return nil
	}
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(bytes.NewReader(payload))
	dec.SetCustomStructTag("json")
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	return nil
}

// MaxPayloadDepth is how deeply arrays and maps may nest in a payload (a scalar is at
// depth 0, [1] at 1, [[1]] at 2). A payload of nested one-element arrays costs one byte
// a level: within the size limit it nested half a million deep, and decoding it took
// seconds and a gigabyte (deeper, a stack overflow). Real arguments nest a few levels.
const MaxPayloadDepth = 64

// ValidPayload reports an error if payload is not exactly one msgpack value, or if its
// arrays and maps nest deeper than MaxPayloadDepth. It walks the bytes without
// recursion or decoding, so any payload is checked in time linear in its size.
func ValidPayload(payload []byte) error {
	if len(payload) == 0 {
		return nil
	}
	end, err := scanMsgpack(payload, MaxPayloadDepth)
	if err != nil {
		return err
	}
	if end < len(payload) {
		return fmt.Errorf("%w: trailing bytes after the msgpack value", ErrBadPayload)
	}
	return nil
}

// scanMsgpack reads one msgpack value at the start of p and returns where it ends. Each
// open array or map keeps a count of the values still to read in it.
func scanMsgpack(p []byte, maxDepth int) (int, error) {
	notMsgpack := func(format string, a ...any) error {
		return fmt.Errorf("%w: not msgpack: "+format, append([]any{ErrBadPayload}, a...)...)
	}
	var open []uint64
	i := 0
	// length reads an n-byte big-endian length at i
	length := func(n int) (uint64, bool) {
		if len(p)-i < n {
			return 0, false
		}
		var v uint64
		for _, c := range p[i : i+n] {
			v = v<<8 | uint64(c)
		}
		i += n
		return v, true
	}
	for {
		if i >= len(p) {
			return i, notMsgpack("unexpected end at byte %d", i)
		}
		c := p[i]
		at := i
		i++
		var skip, items uint64 // bytes to pass over; values in a container
		container, ok := false, true
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f: // fixmap
			container, items = true, 2*uint64(c&0x0f)
		case c <= 0x9f: // fixarray
			container, items = true, uint64(c&0x0f)
		case c <= 0xbf: // fixstr
			skip = uint64(c & 0x1f)
		case c == 0xc0, c == 0xc2, c == 0xc3: // nil, false, true
		case c >= 0xc4 && c <= 0xc6: // bin 8, 16, 32
			skip, ok = length(1 << (c - 0xc4))
		case c >= 0xc7 && c <= 0xc9: // ext 8, 16, 32: length, type, data
			skip, ok = length(1 << (c - 0xc7))
			skip++
		case c == 0xca: // float 32
			skip = 4
		case c == 0xcb: // float 64
			skip = 8
		case c >= 0xcc && c <= 0xcf: // uint 8..64
			skip = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3: // int 8..64
			skip = 1 << (c - 0xd0)
		case c >= 0xd4 && c <= 0xd8: // fixext 1..16: type, data
			skip = 1 + 1<<(c-0xd4)
		case c >= 0xd9 && c <= 0xdb: // str 8, 16, 32
			skip, ok = length(1 << (c - 0xd9))
		case c == 0xdc, c == 0xdd: // array 16, 32
			container = true
			items, ok = length(2 << (c - 0xdc))
		case c == 0xde, c == 0xdf: // map 16, 32
			container = true
			items, ok = length(2 << (c - 0xde))
			items *= 2
		default: // 0xc1, never used
			return at, notMsgpack("unknown code %x at byte %d", c, at)
		}
		if !ok || skip > uint64(len(p)-i) {
			return at, notMsgpack("unexpected end in the value at byte %d", at)
		}
		i += int(skip)
		if container {
			if len(open) >= maxDepth {
				return at, fmt.Errorf("%w: arrays and maps nest deeper than %d levels (job.MaxPayloadDepth), at byte %d",
					ErrBadPayload, maxDepth, at)
			}
			if items > 0 {
				open = append(open, items)
				continue
			}
		}
		// a value ended: so do the containers it was the last value of
		for len(open) > 0 {
			open[len(open)-1]--
			if open[len(open)-1] > 0 {
				break
			}
			open = open[:len(open)-1]
		}
		if len(open) == 0 {
			return i, nil
		}
	}
}

// ValidateTaskName checks a task name: 1 to 128 printable characters, no spaces.
func ValidateTaskName(name string) error {
	if err := validateName(name, 128); err != nil {
		return &OptionError{"Task", fmt.Sprintf("%q", name), err.Error()}
	}
	return nil
}

// ValidateQueueName checks a queue name: 1 to 64 of [A-Za-z0-9_.-]. No ':' or ',':
// the worker's --queues flag and config file write "name:weight:cap,name...", so a
// queue named with either could not be served from them.
func ValidateQueueName(name string) error {
	if name == "" || len(name) > 64 {
		return &OptionError{"Queue", fmt.Sprintf("%q", name), "must be 1 to 64 characters"}
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			why := ""
			if r == ':' || r == ',' {
				why = " (--queues separates name, weight and cap with ':', and queues with ',')"
			}
			return &OptionError{"Queue", fmt.Sprintf("%q", name), fmt.Sprintf("has %q%s; use letters, digits and _ . -", r, why)}
		}
	}
	return nil
}

func validateName(name string, max int) error {
	if name == "" || len(name) > max {
		return fmt.Errorf("must be 1 to %d characters", max)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == '{' || r == '}' {
			return fmt.Errorf("has %q; no spaces, control characters or braces", r)
		}
	}
	return nil
}
