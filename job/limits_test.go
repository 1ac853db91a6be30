package job_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/chronoq/chronoq/job"
)

func TestParseRate(t *testing.T) {
	cases := []struct {
		spec      string
		perSecond float64
		burst     int
	}{
		{"100/s", 100, 1},
		{"200/s", 200, 2},
		{"10/m", 10.0 / 60, 1},
		{"5/h", 5.0 / 3600, 1},
		{"1/h", 1.0 / 3600, 1},
		{"100/s:20", 100, 20},
		{"2.5/s", 2.5, 1},
		{" 10/s ", 10, 1},
		{"1000000/s", 1e6, 10000},
	}
	for _, c := range cases {
		r, err := job.ParseRate(c.spec)
		if err != nil {
			t.Errorf("%q: %v", c.spec, err)
			continue
		}
		if math.Abs(r.PerSecond()-c.perSecond) > 1e-9 || r.Burst != c.burst {
			t.Errorf("%q: %v/s burst %d, want %v/s burst %d", c.spec, r.PerSecond(), r.Burst, c.perSecond, c.burst)
		}
		if again, err := job.ParseRate(r.String()); err != nil || again.PerSecond() != r.PerSecond() || again.Burst != r.Burst {
			t.Errorf("%q: String %q does not read back: %v", c.spec, r.String(), err)
		}
	}
	for _, bad := range []string{"", "10", "10/", "/s", "10/d", "10/S", "0/s", "-1/s", "NaN/s", "Inf/s", "1e309/s", "0.5/h",
		"1000001/s", "10/s:", "10/s:0", "10/s:-1", "10/s:1.5", "10/s:1000001", "10/s:2:3", "ten/s"} {
		if _, err := job.ParseRate(bad); !errors.Is(err, job.ErrBadLimit) || !errors.Is(err, job.ErrInvalidOption) {
			t.Errorf("%q: %v, want ErrBadLimit", bad, err)
		}
	}
}

func TestLimitOptionsValidate(t *testing.T) {
	for _, o := range []job.Options{
		{MaxRunning: -1},
		{MaxRunning: job.MaxRunningLimit + 1},
		{RateLimit: job.Rate{Count: 1, Per: time.Millisecond, Burst: 1}},
		{RateLimit: job.Rate{Count: math.NaN(), Per: time.Second, Burst: 1}},
		{RateLimit: job.Rate{Count: 1, Per: time.Second, Burst: 0}},
	} {
		d := job.DefaultOptions()
		d.MaxRunning, d.RateLimit = o.MaxRunning, o.RateLimit
		if err := d.Validate(); !errors.Is(err, job.ErrBadLimit) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
