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

// ValidPayload reports an error if payload is not exactly one msgpack value.
func ValidPayload(payload []byte) error {
	if len(payload) == 0 {
		return nil
	}
	dec := msgpack.NewDecoder(bytes.NewReader(payload))
	if err := dec.Skip(); err != nil {
		return fmt.Errorf("%w: not msgpack: %v", ErrBadPayload, err)
	}
	if _, err := dec.PeekCode(); err == nil {
		return fmt.Errorf("%w: trailing bytes after the msgpack value", ErrBadPayload)
	}
	return nil
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
