package cli

import (
	"strings"
	"testing"

	"github.com/chronoq/chronoq/worker"
)

// TestParseAutoscale: --autoscale takes two counts in either order (the issue's
// min,max and Celery's max,min); anything else is an error naming the value.
func TestParseAutoscale(t *testing.T) {
	cases := []struct {
		in   string
		want worker.Autoscale
		err  string // "" means valid
	}{
		{"", worker.Autoscale{}, ""},
		{"4,64", worker.Autoscale{Min: 4, Max: 64}, ""},
		{"10,3", worker.Autoscale{Min: 3, Max: 10}, ""}, // Celery's order
		{" 2 , 8 ", worker.Autoscale{Min: 2, Max: 8}, ""},
		{"5,5", worker.Autoscale{Min: 5, Max: 5}, ""},
		{"1,10000", worker.Autoscale{Min: 1, Max: worker.MaxConcurrency}, ""},
		{"4", worker.Autoscale{}, `"4": want two slot counts, min,max (or Celery's max,min)`},
		{"4,", worker.Autoscale{}, `"4,": "" is not a whole number of slots`},
		{"1,2,3", worker.Autoscale{}, `"1,2,3": want two slot counts`},
		{"a,b", worker.Autoscale{}, `"a,b": "a" is not a whole number of slots`},
		{"4,6.5", worker.Autoscale{}, `"4,6.5": "6.5" is not a whole number`},
		{"0,4", worker.Autoscale{}, `"0,4": 0 is below 1`},
		{"4,-1", worker.Autoscale{}, `"4,-1": -1 is below 1`},
		{"64,100000", worker.Autoscale{}, `"64,100000": worker: Autoscale.Max 100000 is over MaxConcurrency (10000)`},
		{"4,99999999999999999999", worker.Autoscale{}, `"4,99999999999999999999": 99999999999999999999 is out of range (1 to 10000)`},
	}
	for _, tc := range cases {
		got, err := parseAutoscale(tc.in)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("parseAutoscale(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("parseAutoscale(%q) = %+v, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
}
