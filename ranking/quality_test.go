package ranking

import (
	"errors"
	"math"
	"testing"
)

func TestRankCorrelations(t *testing.T) {
	cases := []struct {
		name      string
		x, y      []float64
		tau, spea float64
	}{
		{"same order", []float64{1, 2, 3, 4}, []float64{10, 20, 30, 40}, 1, 1},
		{"reversed", []float64{1, 2, 3, 4}, []float64{4, 3, 2, 1}, -1, -1},
		{"one swap", []float64{1, 2, 3, 4}, []float64{1, 3, 2, 4}, 4.0 / 6, 0.8},
		{"ties in x", []float64{1, 1, 2}, []float64{1, 2, 3}, 2 / math.Sqrt(6), math.Sqrt(3) / 2},
	}
	for _, tc := range cases {
		if got := KendallTau(tc.x, tc.y); math.Abs(got-tc.tau) > 1e-9 {
			t.Errorf("%s: tau %v, want %v", tc.name, got, tc.tau)
		}
		if got := Spearman(tc.x, tc.y); math.Abs(got-tc.spea) > 1e-9 {
			t.Errorf("%s: spearman %v, want %v", tc.name, got, tc.spea)
		}
	}
}

func TestMeasure(t *testing.T) {
	q := Measure([]Sample{{Predicted: 10, Actual: 20}, {Predicted: 30, Actual: 30}, {Predicted: 0, Actual: 5}})
	if q.Samples != 2 || q.MAEMs != 5 || q.MAPE != 0.25 || q.KendallTau != 1 {
		t.Fatalf("%+v", q)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Mode: "turbo", Rule: RuleFixed, Alpha: 0.1},
		{Mode: ModeActive, Rule: "magic", Alpha: 0.1},
		{Mode: ModeActive, Rule: RuleFixed, W: -1, Alpha: 0.1},
		{Mode: ModeActive, Rule: RuleFixed, W: 1, Alpha: 0},
		{Mode: ModeActive, Rule: RuleFixed, W: math.NaN(), Alpha: 0.5},
	}
	for i, c := range bad {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("case %d: %v", i, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if w, _ := ParseW(FormatW(math.Inf(1))); !math.IsInf(w, 1) {
		t.Fatal("inf")
	}
}
