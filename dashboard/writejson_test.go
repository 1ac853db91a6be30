package dashboard

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// writeJSON encodes before it sends: a value JSON cannot hold answers 500 with an error
// naming it, not 200 with a body cut where the encoder stopped.
func TestWriteJSONReportsEncodingErrors(t *testing.T) {
	cases := []struct {
		name string
		v    any
		code int
		in   string
	}{
		{"plain", map[string]float64{"mean_ms": 5}, 200, `{"mean_ms":5}`},
		{"escaped markup", map[string]string{"a": "<script>"}, 200, `\u003cscript\u003e`},
		{"+Inf", []any{"ok", map[string]float64{"prior_ms": math.Inf(1)}}, 500, "unsupported value: +Inf"},
		{"NaN", struct{ X float64 }{math.NaN()}, 500, "unsupported value: NaN"},
		{"a channel", map[string]any{"c": make(chan int)}, 500, "unsupported type: chan int"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeJSON(rec, tc.v)
			body := rec.Body.String()
			if rec.Code != tc.code || !strings.Contains(body, tc.in) || !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%d %s, want %d with %q, valid JSON", rec.Code, body, tc.code, tc.in)
			}
			if tc.code != 200 && !strings.Contains(body, "cannot be written as JSON") {
				t.Fatalf("error body %s", body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
	rec := httptest.NewRecorder()
	writeJSONCode(rec, http.StatusCreated, map[string]string{"id": "x"})
	if rec.Code != http.StatusCreated || !strings.Contains(rec.Body.String(), `"id":"x"`) {
		t.Fatalf("created: %d %s", rec.Code, rec.Body)
	}
}
