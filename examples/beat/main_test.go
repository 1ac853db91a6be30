package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/beat"
)

func TestSeedScheduleFileAndGoAgree(t *testing.T) {
	f, err := os.Open("beat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fromFile, err := beat.LoadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	// the day before Berlin springs forward: 02:00 does not exist that night, and the
	// retrain runs at the first instant after the gap, 03:00 CEST
	now := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)
	for i, e := range Entries() {
		a, err := beat.NextRun(e, now)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := beat.NextRun(fromFile[i], now)
		if fromFile[i].Name != e.Name || !a.Equal(b) {
			t.Errorf("%s: Go says %s, the file %s", e.Name, a, b)
		}
	}
	var out bytes.Buffer
	if err := printNext(&out, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "nightly-retrain") || !strings.Contains(out.String(), "2026-03-29T03:00:00+02:00") {
		t.Fatalf("%s", out.String())
	}
}
