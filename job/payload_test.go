package job

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// nested is depth one-element arrays around 1: 0x91 0x91 ... 0x01.
func nested(depth int) []byte {
	return append(bytes.Repeat([]byte{0x91}, depth), 0x01)
}

// A payload nests at most MaxPayloadDepth arrays and maps. 524 KB of nested one-element
// arrays passed (within the size limit) and took the dashboard 4.6 s and 888 MB to
// decode; deeper would overflow the stack.
func TestValidPayloadDepth(t *testing.T) {
	deepMap := bytes.Repeat([]byte{0x81, 0xa1, 'k'}, MaxPayloadDepth+1) // {"k": {"k": ...}}
	deepMap = append(deepMap, 0xc0)
	wide, _ := EncodeArgs(map[string]any{"a": []any{[]any{1, 2}, map[string]any{"b": []any{}}}, "c": "d"})
	array16 := append([]byte{}, bytes.Repeat([]byte{0xdc, 0x00, 0x01}, MaxPayloadDepth+1)...)
	array16 = append(array16, 0x01)
	emptyAtBottom := append(bytes.Repeat([]byte{0x91}, MaxPayloadDepth), 0x90) // [[...[]...]]: 65 levels
	cases := []struct {
		name string
		p    []byte
		want string // "" means valid
	}{
		{"at the limit", nested(MaxPayloadDepth), ""},
		{"one past", nested(MaxPayloadDepth + 1), "nest deeper than 64 levels (job.MaxPayloadDepth), at byte 64"},
		{"524 KB deep", nested(524 << 10), "nest deeper than 64 levels"},
		{"deep maps", deepMap, "nest deeper than 64 levels"},
		{"deep array16", array16, "nest deeper than 64 levels"},
		{"empty array one past", emptyAtBottom, "nest deeper than 64 levels"},
		{"empty array at the limit", emptyAtBottom[1:], ""},
		{"wide and shallow", wide, ""},
		{"cut deep", nested(MaxPayloadDepth)[:MaxPayloadDepth], "not msgpack: unexpected end"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidPayload(tc.p)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrBadPayload) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an ErrBadPayload naming %q", err, tc.want)
			}
		})
	}
}

// validBySkip is ValidPayload as it was, by the msgpack decoder's recursive Skip: the
// reference the non-recursive walk must agree with on payloads within the depth limit.
func validBySkip(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	dec := msgpack.NewDecoder(bytes.NewReader(p))
	if dec.Skip() != nil {
		return false
	}
	_, err := dec.PeekCode()
	return err != nil
}

// randomValue is a value of every msgpack kind, nested up to depth.
func randomValue(r *rand.Rand, depth int) any {
	switch k := r.IntN(14); {
	case k == 0 && depth > 0:
		n, d := r.IntN(20), depth-1
		if r.IntN(8) == 0 {
			n, d = 16+r.IntN(300), 0 // array 16, of scalars
		}
		a := make([]any, n)
		for i := range a {
			a[i] = randomValue(r, d)
		}
		return a
	case k == 1 && depth > 0:
		m := map[string]any{}
		for i := range r.IntN(20) {
			m[strings.Repeat("k", i)] = randomValue(r, depth-1)
		}
		return m
	case k == 2:
		return strings.Repeat("s", []int{0, 5, 31, 32, 255, 256, 1000}[r.IntN(7)])
	case k == 3:
		return bytes.Repeat([]byte{1}, []int{0, 5, 255, 256, 1000}[r.IntN(5)])
	case k == 4:
		return []int64{0, 1, -1, 127, 128, -32, -33, 255, 1 << 15, 1 << 31, 1 << 40, -1 << 40}[r.IntN(12)]
	case k == 5:
		return uint64(1<<64 - 1)
	case k == 6:
		return float32(1.5)
	case k == 7:
		return 2.25
	case k == 8:
		return time.Unix(r.Int64N(1<<40), r.Int64N(1e9)) // an ext value
	case k == 9:
		return true
	case k == 10:
		return false
	}
	return nil
}

// Over random values of every kind, whole, cut and with a byte changed, the walk
// accepts exactly what the decoder's Skip accepted.
func TestValidPayloadAgreesWithTheDecoder(t *testing.T) {
	// the 32-bit lengths and the ext forms, which the random values below seldom reach
	for _, p := range [][]byte{
		{0xdd, 0, 0, 0, 1, 0x01}, {0xdd, 0, 0, 0, 2, 0x01}, {0xdf, 0, 0, 0, 1, 0xa1, 'k', 0xc0}, {0xdf, 0, 0, 0, 1, 0xa1, 'k'},
		{0xdb, 0, 0, 0, 2, 'a', 'b'}, {0xdb, 0, 0, 0, 3, 'a', 'b'}, {0xc6, 0, 0, 0, 1, 9}, {0xc6, 0xff, 0xff, 0xff, 0xff, 9},
		{0xc9, 0, 0, 0, 1, 5, 9}, {0xc9, 0, 0, 0, 1, 5}, {0xc7, 2, 5, 1, 2}, {0xc8, 0, 1, 5, 1}, {0xd4, 5, 1}, {0xd8, 5},
		{0xcf, 1, 2, 3, 4, 5, 6, 7, 8}, {0xd3, 1, 2, 3}, {0xca, 1, 2, 3, 4}, {0xcb, 1}, {0xc1}, {0xc0, 0xc0}, {0xde, 0, 0},
		{0xdc, 0xff, 0xff}, {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if got, want := ValidPayload(p) == nil, validBySkip(p); got != want {
			t.Errorf("% x: ValidPayload %v (%v), the decoder's Skip %v", p, got, ValidPayload(p), want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.UseCompactInts(i%2 == 0)
		if err := enc.Encode(randomValue(r, 1+r.IntN(6))); err != nil {
			t.Fatal(err)
		}
		p := buf.Bytes()
		variants := [][]byte{p, p[:r.IntN(len(p)+1)], append(append([]byte{}, p...), byte(r.IntN(256)))}
		mutated := append([]byte{}, p...)
		mutated[r.IntN(len(mutated))] = byte(r.IntN(256))
		variants = append(variants, mutated)
		for v, q := range variants {
			if got, want := ValidPayload(q) == nil, validBySkip(q); got != want {
				t.Fatalf("value %d, variant %d (% x…): ValidPayload %v (%v), the decoder's Skip %v", i, v, q[:min(len(q), 32)], got, ValidPayload(q), want)
			}
		}
	}
}
