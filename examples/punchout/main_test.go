package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestPunchOutExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), redistest.Client(t), 300*time.Millisecond, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"2 automatic punch-outs waiting", "employee 42 automatically punched out", "employee 13 automatically punched out"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "employee 7 automatically") {
		t.Errorf("7 punched out by hand but was punched out again:\n%s", s)
	}
}
