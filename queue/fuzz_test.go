package queue_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

// FuzzDecodeJSONArgs: EnqueueJSON's parser (the dashboard's and the CLI's too) takes
// exactly one JSON document nesting at most job.MaxPayloadDepth levels, refuses
// anything else with job.ErrBadPayload, and never panics. What it takes is stored as a
// valid payload and reads back as the same document.
func FuzzDecodeJSONArgs(f *testing.F) {
	for _, s := range []string{
		``, ` `, `null`, `{"to":"ada@example.com"}`, `{"a":1,"b":2}`, `[1,2.5,-3,"x",true,null]`,
		`{"n":9007199254740993,"f":1e20,"g":-0,"h":1.5e-7,"big":123456789012345678901234567890}`,
		`"\u00e9\ud83d\ude00"`, `{"nested":{"list":[{"k":[]}]}}`, `{"a":1} {"b":2}`,
		`{"a":}`, `[1,2`, `{"a":"\"]]]"}`, `01`, `{"a":1,"a":2}`, "\xff", `"\xff"`,
		strings.Repeat("[", job.MaxPayloadDepth) + strings.Repeat("]", job.MaxPayloadDepth),
		strings.Repeat("[", job.MaxPayloadDepth+1) + strings.Repeat("]", job.MaxPayloadDepth+1),
		`]]` + strings.Repeat("[", job.MaxPayloadDepth+1) + strings.Repeat("]", job.MaxPayloadDepth+1),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := queue.DecodeJSONArgs(data)
		if err != nil {
			if !errors.Is(err, job.ErrBadPayload) {
				t.Fatalf("DecodeJSONArgs(%q): %v does not wrap job.ErrBadPayload", data, err)
			}
			// (a number past float64's range, which encoding/json cannot read either,
			// may be refused)
			if json.Valid(data) && jsonDepth(data) <= job.MaxPayloadDepth && json.Unmarshal(data, new(any)) == nil {
				t.Fatalf("DecodeJSONArgs refuses %q, one JSON document within the depth limit: %v", data, err)
			}
			return
		}
		if len(bytes.TrimSpace(data)) == 0 {
			if v != nil {
				t.Fatalf("DecodeJSONArgs(%q) = %#v, want nil (no arguments)", data, v)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("DecodeJSONArgs takes %q, which is not one JSON document: %#v", data, v)
		}
		if d := jsonDepth(data); d > job.MaxPayloadDepth {
			t.Fatalf("DecodeJSONArgs takes %q, nesting %d levels (limit %d)", data, d, job.MaxPayloadDepth)
		}
		p, err := job.EncodeArgs(v)
		if err != nil {
			t.Fatalf("EncodeArgs(DecodeJSONArgs(%q)): %v", data, err)
		}
		if err := job.ValidPayload(p); err != nil {
			t.Fatalf("the payload of %q is refused by ValidPayload: %v", data, err)
		}
		var back any
		if err := job.DecodeArgs(p, &back); err != nil {
			t.Fatalf("DecodeArgs of the payload of %q: %v", data, err)
		}
		// the arguments read back are the document: what encoding/json reads of it
		// (every number as a float64, so compare through that; -0 equals 0, as integral
		// numbers are stored as integers)
		got, err := json.Marshal(back)
		if err != nil {
			t.Fatalf("the arguments of %q read back as %#v, which JSON cannot hold: %v", data, back, err)
		}
		var want, have any
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("encoding/json reads %q: %v", data, err)
		}
		if err := json.Unmarshal(got, &have); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(want, have) {
			t.Fatalf("the arguments of %q read back as %s, want %s", data, got, mustJSON(t, want))
		}
	})
}

// jsonDepth is how deeply a valid JSON document's arrays and objects nest.
func jsonDepth(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
