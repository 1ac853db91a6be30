package job

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// payloadSeeds are payloads a worker meets: what EncodeArgs writes for typical
// arguments, and bytes that are not one msgpack value within the depth limit.
func payloadSeeds(f *testing.F) {
	for _, v := range []any{
		nil, true, 42, -1, uint64(1<<64 - 1), 2.5, float32(1.5), math.Inf(1), "hello", []byte{0, 1, 2},
		[]int{1, 2, 3}, map[string]any{"to": "ada@example.com", "n": 3, "tags": []string{"a", "b"}},
		map[string]any{"a": []any{[]any{1, 2}, map[string]any{"b": []any{}}}, "c": nil},
		struct {
			UserID int64   `json:"user_id"`
			Ratio  float64 `json:"ratio"`
		}{7, 0.25},
		time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC),
	} {
		p, err := EncodeArgs(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	for _, p := range [][]byte{
		{}, {0xc1}, {0x92, 0x01}, {0x91, 0x01, 0x01}, {0xa3, 'x', 'y'}, {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01},
		{0xdf, 0, 0, 0, 1, 0xa1, 'k'}, {0xc6, 0xff, 0xff, 0xff, 0xff, 9}, {0xc7, 2, 5, 1, 2}, {0xd4, 0xff, 1},
		{0xd6, 0xff, 0, 0, 0, 1}, {0x81, 0x01, 0x02}, {0x81, 0xc0, 0x01}, {0x82, 0xa1, 'k', 1, 0xa1, 'k', 2},
		nested(MaxPayloadDepth), nested(MaxPayloadDepth + 1),
		append(bytes.Repeat([]byte{0x81, 0xa1, 'k'}, MaxPayloadDepth+1), 0xc0),
		append(bytes.Repeat([]byte{0x91}, MaxPayloadDepth), 0x90),
	} {
		f.Add(p)
	}
}

// FuzzValidPayload: ValidPayload accepts exactly the payloads that are one msgpack
// value (by the decoder's own recursive reading) nesting at most MaxPayloadDepth
// levels, refuses the rest with ErrBadPayload, and never panics. A payload it accepts
// and the decoder reads comes back the same through EncodeArgs and DecodeArgs.
func FuzzValidPayload(f *testing.F) {
	payloadSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) {
		err := ValidPayload(p)
		if err != nil && !errors.Is(err, ErrBadPayload) {
			t.Fatalf("ValidPayload(% x): %v does not wrap ErrBadPayload", head(p), err)
		}
		depth, whole := referenceWalk(p)
		want := len(p) == 0 || whole && depth <= MaxPayloadDepth
		if (err == nil) != want {
			t.Fatalf("ValidPayload(% x) = %v; the decoder reads one whole value: %v, nesting %d levels (limit %d)",
				head(p), err, whole, depth, MaxPayloadDepth)
		}
		if err == nil && len(p) > 0 {
			if ValidPayload(append(slices.Clip(p), 0xc0)) == nil {
				t.Fatalf("ValidPayload accepts % x with a byte after it", head(p))
			}
			if ValidPayload(p[:len(p)-1]) == nil && len(p) > 1 {
				t.Fatalf("ValidPayload accepts % x without its last byte", head(p))
			}
		}
		if err != nil {
			return
		}
		var v any
		if err := DecodeArgs(p, &v); err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("DecodeArgs(% x): %v does not wrap ErrBadPayload", head(p), err)
			}
			return // e.g. an ext type the decoder does not know
		}
		again, err := EncodeArgs(v)
		if err != nil {
			t.Fatalf("EncodeArgs of what DecodeArgs(% x) read (%#v): %v", head(p), v, err)
		}
		if err := ValidPayload(again); err != nil {
			t.Fatalf("ValidPayload refuses EncodeArgs(%#v) = % x: %v", v, head(again), err)
		}
		var back any
		if err := DecodeArgs(again, &back); err != nil {
			t.Fatalf("DecodeArgs(EncodeArgs(%#v)): %v", v, err)
		}
		if a, b := canon(v), canon(back); a != b {
			t.Fatalf("round trip of % x:\n got %s\nwant %s", head(p), b, a)
		}
	})
}

// fuzzArgs is a task's arguments as an application declares them.
type fuzzArgs struct {
	ID      int64             `json:"id"`
	Count   uint32            `json:"count"`
	Ratio   float64           `json:"ratio"`
	Name    string            `json:"name"`
	Data    []byte            `json:"data"`
	On      bool              `json:"on"`
	Tags    []string          `json:"tags"`
	Labels  map[string]string `json:"labels"`
	Nested  *fuzzArgs         `json:"nested,omitempty"`
	When    time.Time         `json:"when"`
	Skipped string            `json:"-"`
}

// FuzzTaskArgs: a task's typed arguments come back equal through Task.Encode and
// Task.Decode, and the payload passes ValidPayload; decoding arbitrary bytes into the
// arguments type fails with ErrBadPayload or succeeds, never panics.
func FuzzTaskArgs(f *testing.F) {
	f.Add(int64(42), uint32(7), 0.5, "ada", []byte("x"), true, "a,b", "k=v", int64(1767225600), []byte{})
	f.Add(int64(-1<<63), uint32(1<<32-1), math.Inf(-1), "", []byte(nil), false, "", "", int64(0), []byte{0xc1})
	f.Add(int64(0), uint32(0), math.NaN(), "日本\x00\xff", []byte{0xff}, false, ",,", "=,a=", int64(-62135596800), []byte{0x81, 0xa2, 'i', 'd', 0xa1, 'x'})
	payloadSeedsInto(f)
	task := NewTask[fuzzArgs]("fuzz.args")
	f.Fuzz(func(t *testing.T, id int64, count uint32, ratio float64, name string, data []byte, on bool, tags, labels string, unix int64, raw []byte) {
		in := fuzzArgs{ID: id, Count: count, Ratio: ratio, Name: name, Data: data, On: on, When: time.Unix(unix%(1<<40), 0).UTC()}
		if tags != "" {
			in.Tags = strings.Split(tags, ",")
		}
		if labels != "" {
			in.Labels = map[string]string{}
			for _, kv := range strings.Split(labels, ",") {
				k, v, _ := strings.Cut(kv, "=")
				in.Labels[k] = v
			}
		}
		in.Nested = &fuzzArgs{Name: name + "'", Tags: in.Tags}
		p, err := task.Encode(in)
		if err != nil {
			t.Fatalf("Encode(%+v): %v", in, err)
		}
		if err := ValidPayload(p); err != nil {
			t.Fatalf("ValidPayload(Encode(%+v)): %v", in, err)
		}
		out, err := task.Decode(p)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", in, err)
		}
		if !sameArgs(in, out) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
		}
		// bytes from elsewhere (a producer in another language, a damaged record)
		var a fuzzArgs
		if err := DecodeArgs(raw, &a); err != nil && !errors.Is(err, ErrBadPayload) {
			t.Fatalf("DecodeArgs(% x) into the args type: %v does not wrap ErrBadPayload", head(raw), err)
		}
	})
}

// payloadSeedsInto adds the payload seeds as FuzzTaskArgs' raw argument.
func payloadSeedsInto(f *testing.F) {
	for _, p := range [][]byte{nested(3), {0x81, 0xa5, 'c', 'o', 'u', 'n', 't', 0xff}, {0x81, 0xa4, 't', 'a', 'g', 's', 0x91, 0x01}} {
		f.Add(int64(1), uint32(1), 1.0, "n", []byte{}, false, "", "", int64(1), p)
	}
}

// sameArgs compares arguments as a round trip must keep them: NaN equals NaN, an empty
// slice or map equals a nil one (both encode as nil or as empty), times by instant.
func sameArgs(a, b fuzzArgs) bool {
	same := (a.Ratio == b.Ratio || math.IsNaN(a.Ratio) && math.IsNaN(b.Ratio)) &&
		a.ID == b.ID && a.Count == b.Count && a.Name == b.Name && bytes.Equal(a.Data, b.Data) && a.On == b.On &&
		slices.Equal(a.Tags, b.Tags) && len(a.Labels) == len(b.Labels) && a.When.Equal(b.When) && b.Skipped == ""
	for k, v := range a.Labels {
		if w, ok := b.Labels[k]; !ok || w != v {
			return false
		}
	}
	if !same || (a.Nested == nil) != (b.Nested == nil) {
		return false
	}
	return a.Nested == nil || sameArgs(*a.Nested, *b.Nested)
}

// referenceWalk reads p with the msgpack decoder, recursively: how deep its arrays and
// maps nest, and whether p is exactly one value.
func referenceWalk(p []byte) (depth int, whole bool) {
	if len(p) == 0 {
		return 0, false
	}
	dec := msgpack.NewDecoder(bytes.NewReader(p))
	var walk func() (int, error)
	walk = func() (int, error) {
		c, err := dec.PeekCode()
		if err != nil {
			return 0, err
		}
		n, items := 0, 0
		switch {
		case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
			n, err = dec.DecodeArrayLen()
			items = n
		case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
			n, err = dec.DecodeMapLen()
			items = 2 * n
		default:
			return 0, dec.Skip()
		}
		if err != nil {
			return 0, err
		}
		deepest := 0
		for range items {
			d, err := walk()
			if err != nil {
				return 0, err
			}
			deepest = max(deepest, d)
		}
		return 1 + deepest, nil
	}
	depth, err := walk()
	if err != nil {
		return depth, false
	}
	_, err = dec.PeekCode()
	return depth, err != nil // nothing after the value
}

// canon writes a decoded value so that values a round trip must keep equal write the
// same: numbers by their exact value whatever their Go type (the encoder writes an
// integral float as an integer, and the smallest integer type that fits), NaN as NaN,
// map entries sorted.
func canon(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case bool:
		return strconv.FormatBool(x)
	case string:
		return "s" + strconv.Quote(x)
	case []byte:
		return "b" + hex.EncodeToString(x)
	case time.Time:
		return fmt.Sprintf("t%d.%09d", x.Unix(), x.Nanosecond())
	case float32:
		return number(float64(x))
	case float64:
		return number(x)
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "n" + strconv.FormatInt(r.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "n" + strconv.FormatUint(r.Uint(), 10)
	case reflect.Slice, reflect.Array:
		parts := make([]string, r.Len())
		for i := range parts {
			parts[i] = canon(r.Index(i).Interface())
		}
		return "[" + strings.Join(parts, ",") + "]"
	case reflect.Map:
		var parts []string
		for it := r.MapRange(); it.Next(); {
			parts = append(parts, canon(it.Key().Interface())+":"+canon(it.Value().Interface()))
		}
		slices.Sort(parts)
		return "{" + strings.Join(parts, ",") + "}"
	}
	return fmt.Sprintf("?%T(%v)", v, v)
}

// number writes a float by its exact value, as canon writes an integer of that value.
func number(x float64) string {
	if math.IsNaN(x) {
		return "nNaN"
	}
	if math.IsInf(x, 0) {
		return "n" + strconv.FormatFloat(x, 'g', -1, 64)
	}
	r, _ := new(big.Float).SetFloat64(x).Rat(nil)
	return "n" + r.RatString()
}

// head is the start of p, for messages.
func head(p []byte) []byte { return p[:min(len(p), 48)] }
