package ranking

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// A prior must be finite, above 0 and at most MaxPriorMs: an infinite one made the hrrn
// rule compute inf / inf = NaN, and a NaN candidate wins every comparison it is first in.
func TestValidatePriors(t *testing.T) {
	cases := []struct {
		name   string
		priors map[string]float64
		want   string // "" means valid
	}{
		{"none", nil, ""},
		{"ordinary", map[string]float64{"a": 10, "b": 0.001}, ""},
		{"at the bound", map[string]float64{"a": MaxPriorMs}, ""},
		{"+Inf", map[string]float64{"a": 1, "huge": math.Inf(1)}, `prior of task "huge" is +Inf ms`},
		{"-Inf", map[string]float64{"a": math.Inf(-1)}, `task "a" is -Inf ms`},
		{"NaN", map[string]float64{"a": math.NaN()}, `task "a" is NaN ms`},
		{"zero", map[string]float64{"a": 0}, `task "a" is 0 ms`},
		{"negative", map[string]float64{"a": -5}, `task "a" is -5 ms`},
		{"past the bound", map[string]float64{"a": MaxPriorMs * 2}, `task "a" is 6.3072e+11 ms`},
		{"largest float", map[string]float64{"a": math.MaxFloat64}, `task "a" is 1.7976931348623157e+308 ms`},
		{"first bad by name", map[string]float64{"z": math.NaN(), "b": math.Inf(1)}, `task "b"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePriors(tc.priors)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) ||
				!strings.Contains(err.Error(), "at most 315360000000 (MaxPriorMs, 10 years)") {
				t.Fatalf("%v, want an ErrInvalidConfig naming %q and the bounds", err, tc.want)
			}
		})
	}
}

// Every float setting is checked so that NaN fails it; W alone may be +Inf (shortest
// predicted first), by design.
func TestConfigFloatsBounded(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	cases := []struct {
		name     string
		w, alpha float64
		want     string // "" means valid
	}{
		{"defaults", DefaultW, DefaultAlpha, ""},
		{"w +Inf", inf, 0.1, ""},
		{"w at MaxW", MaxW, 0.1, ""},
		{"w 0", 0, 0.1, ""},
		{"w past MaxW", MaxW * 10, 0.1, "w 1e+07 must be between 0 and 1e+06, or +Inf"},
		{"w -Inf", math.Inf(-1), 0.1, "w -Inf"},
		{"w NaN", nan, 0.1, "w NaN"},
		{"w negative", -1, 0.1, "w -1"},
		{"alpha 1", 8, 1, ""},
		{"alpha tiny", 8, 1e-300, ""},
		{"alpha +Inf", 8, inf, "alpha +Inf must be in (0, 1]"},
		{"alpha NaN", 8, nan, "alpha NaN"},
		{"alpha -Inf", 8, math.Inf(-1), "alpha -Inf"},
		{"alpha 0", 8, 0, "alpha 0"},
		{"alpha over 1", 8, 1.5, "alpha 1.5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Config{Mode: ModeActive, Rule: RuleFixed, W: tc.w, Alpha: tc.alpha}.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an ErrInvalidConfig naming %q", err, tc.want)
			}
		})
	}
}

// A sample whose prediction or run time is infinite is left out of the measures: one
// would make every mean infinite, and the report could not be written as JSON.
func TestMeasureLeavesOutInfiniteSamples(t *testing.T) {
	inf := math.Inf(1)
	cases := []struct {
		name    string
		samples []Sample
		n       int
	}{
		{"infinite prediction", []Sample{{Predicted: inf, Actual: 5}, {Predicted: 10, Actual: 20}, {Predicted: 30, Actual: 30}}, 2},
		{"infinite run time", []Sample{{Predicted: 5, Actual: inf}, {Predicted: 10, Actual: 20}, {Predicted: 30, Actual: 30}}, 2},
		{"NaN both", []Sample{{Predicted: math.NaN(), Actual: math.NaN()}, {Predicted: 10, Actual: 20}, {Predicted: 30, Actual: 30}}, 2},
		{"only infinite", []Sample{{Predicted: inf, Actual: inf}}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := Measure(tc.samples)
			if q.Samples != tc.n {
				t.Fatalf("%d samples measured, want %d: %+v", q.Samples, tc.n, q)
			}
			if _, err := json.Marshal(q); err != nil {
				t.Fatalf("the measures cannot be written as JSON: %v (%+v)", err, q)
			}
			if tc.n == 2 && (q.MAEMs != 5 || q.MAPE != 0.25) {
				t.Fatalf("%+v", q)
			}
		})
	}
}
