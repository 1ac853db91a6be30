package job

import (
	"errors"
	"math"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestOptionsValidation(t *testing.T) {
	cases := []struct {
		name string
		opt  Option
		want string // "" means valid
	}{
		{"priority 0", Priority(0), ""},
		{"priority 9", Priority(9), ""},
		{"priority 12", Priority(12), "Priority=12"},
		{"priority -1", Priority(-1), "Priority=-1"},
		{"retries 0", MaxRetries(0), ""},
		{"retries -1", MaxRetries(-1), "MaxRetries=-1"},
		{"retries huge", MaxRetries(5000), "MaxRetries=5000"},
		{"timeout 0", Timeout(0), "Timeout=0s"},
		{"retention negative", Retention(-time.Second), "Retention=-1s"},
		{"retention 0", Retention(0), ""},
		{"in negative", In(-time.Second), "In=-1s"},
		{"in 11 years", In(11 * 365 * 24 * time.Hour), "10 years"},
		{"at zero", At(time.Time{}), "At="},
		{"queue", Queue("ml"), ""},
		{"queue with space", Queue("m l"), `Queue="m l"`},
		{"queue empty", Queue(""), "Queue"},
		{"queue with brace", Queue("a{b}"), "Queue"},
		// the separators of --queues (name:weight:cap,...) and spaces are never in a name
		{"queue with dots, dashes, underscores", Queue("mail.high-prio_2"), ""},
		{"queue with colon", Queue("mail:high"), `Queue="mail:high": has ':'`},
		{"queue with comma", Queue("mail,high"), `Queue="mail,high": has ','`},
		{"queue with tab", Queue("mail\thigh"), `Queue="mail\thigh": has '\t'`},
		{"queue with leading space", Queue(" mail"), `Queue=" mail": has ' '`},
		{"cost", Cost("bytes", 1e6), ""},
		{"cost NaN", Cost("bytes", math.NaN()), "Cost"},
		{"cost no name", Cost("", 1), "Cost"},
		{"backoff jitter 2", WithBackoff(Backoff{Base: time.Second, Factor: 2, Jitter: 2}), "Backoff.Jitter=2"},
		{"backoff factor 0.5", WithBackoff(Backoff{Base: time.Second, Factor: 0.5}), "Backoff.Factor=0.5"},
		// durations a worker adds to a clock or to its grace: bounded so none wraps around
		{"timeout a year", Timeout(MaxTimeout), ""},
		{"timeout max int64", Timeout(math.MaxInt64), "Timeout=2562047h47m16.854775807s"},
		{"timeout a year and a second", Timeout(MaxTimeout + time.Second), "Timeout=8760h0m1s: must be positive and at most 8760h0m0s"},
		{"retention a year", Retention(MaxRetention), ""},
		{"retention max int64", Retention(math.MaxInt64), "Retention=2562047h47m16.854775807s"},
		{"backoff base 30 days", WithBackoff(ConstantBackoff(MaxBackoff)), ""},
		{"backoff base max int64", WithBackoff(Backoff{Base: math.MaxInt64, Factor: 2}), "Backoff.Base=2562047h47m16.854775807s"},
		{"backoff max over 30 days", WithBackoff(ExponentialBackoff(time.Second, MaxBackoff+time.Hour)), "Backoff.Max=721h0m0s: must be between 0 and 720h0m0s"},
		{"backoff factor NaN", WithBackoff(Backoff{Base: time.Second, Factor: math.NaN()}), "Backoff.Factor=NaN"},
		{"backoff factor +Inf", WithBackoff(Backoff{Base: time.Second, Factor: math.Inf(1)}), "Backoff.Factor=+Inf"},
		{"backoff jitter NaN", WithBackoff(Backoff{Base: time.Second, Factor: 2, Jitter: math.NaN()}), "Backoff.Jitter=NaN"},
		{"skip if late 10 years", SkipIfLate(MaxHorizon), ""},
		{"skip if late max int64", SkipIfLate(math.MaxInt64), "SkipIfLate=2562047h47m16.854775807s"},
		{"in max int64", In(math.MaxInt64), "In=2562047h47m16.854775807s"},
		{"estimate max int64", Estimate(math.MaxInt64), "Estimate=2562047h47m16.854775807s"},
		{"fair key", FairKey("tenant-42"), ""},
		{"fair key with spaces and unicode", FairKey("Acme Corp / café"), ""},
		{"fair key 128 bytes", FairKey(strings.Repeat("k", MaxFairKeyLen)), ""},
		{"fair key 129 bytes", FairKey(strings.Repeat("k", MaxFairKeyLen+1)), "FairKey=\"" + strings.Repeat("k", MaxFairKeyLen+1) + "\": must be 1 to 128 bytes"},
		{"fair key empty", FairKey(""), `FairKey="": must be 1 to 128 bytes`},
		{"fair key (default) is reserved", FairKey("(default)"), `FairKey="(default)": is reserved: it names the key of jobs without one`},
		{"fair key with a newline", FairKey("a\nb"), `FairKey="a\nb": must be UTF-8 without control or format characters`},
		{"fair key with a unit separator", FairKey("a\x1fb"), `FairKey="a\x1fb": must be UTF-8`},
		{"fair key with a C1 control", FairKey("\u0085tenant"), "FairKey"},
		{"fair key with a line separator", FairKey("a\u2028b"), "FairKey"},
		{"fair key with a bidi mark", FairKey("\u200etenant"), "FairKey"},
		{"fair key not UTF-8", FairKey("\xff\xfe"), "FairKey"},
		{"schedule key not UTF-8", Key("\xff"), "Key"},
		{"schedule key with a C1 control", Key("a\u0085"), "Key"},
		{"schedule key with unicode", Key("rappel:élève:42"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DefaultOptions().Apply(tc.opt)
			wantOptionError(t, err, tc.want)
		})
	}
}

// TestValidateChecksOptionsBuiltByHand: Options set as a struct, not through the Option
// funcs, meet the same bounds.
func TestValidateChecksOptionsBuiltByHand(t *testing.T) {
	cases := []struct {
		name string
		set  func(o *Options)
		want string // "" means valid
	}{
		{"defaults", func(o *Options) {}, ""},
		{"fair key with a tab", func(o *Options) { o.FairKey = "a\tb" }, `FairKey="a\tb": must be UTF-8 without control or format characters`},
		{"timeout max int64", func(o *Options) { o.Timeout = math.MaxInt64 }, "Timeout=2562047h47m16.854775807s"},
		{"retention max int64", func(o *Options) { o.Retention = math.MaxInt64 }, "Retention=2562047h47m16.854775807s"},
		{"late by max int64", func(o *Options) { o.LateBy = math.MaxInt64 }, "SkipIfLate=2562047h47m16.854775807s"},
		{"late by negative", func(o *Options) { o.LateBy = -time.Second }, "SkipIfLate=-1s"},
		{"estimate negative", func(o *Options) { o.Estimate = -time.Second }, "Estimate=-1s"},
		{"estimate max int64", func(o *Options) { o.Estimate = math.MaxInt64 }, "Estimate=2562047h47m16.854775807s"},
		{"backoff max int64", func(o *Options) { o.Backoff.Max = math.MaxInt64 }, "Backoff.Max=2562047h47m16.854775807s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.set(&o)
			wantOptionError(t, o.Validate(), tc.want)
		})
	}
}

func TestApplyDoesNotShareCostMap(t *testing.T) {
	base, err := DefaultOptions().Apply(Cost("a", 1))
	if err != nil {
		t.Fatal(err)
	}
	derived, err := base.Apply(Cost("b", 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(base.Cost) != 1 || len(derived.Cost) != 2 {
		t.Fatalf("base %v derived %v", base.Cost, derived.Cost)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: time.Second, Factor: 2, Max: 10 * time.Second, Jitter: 0.5}
	cases := []struct {
		attempt int
		random  float64
		want    time.Duration
	}{
		{1, 0, time.Second},
		{2, 0, 2 * time.Second},
		{4, 0, 8 * time.Second},
		{5, 0, 10 * time.Second}, // capped
		{50, 0, 10 * time.Second},
		{3, 1, 2 * time.Second}, // 4s less half
		{0, 0, time.Second},     // treated as the first
	}
	for _, tc := range cases {
		if got := b.Delay(tc.attempt, func() float64 { return tc.random }); got != tc.want {
			t.Errorf("attempt %d random %.1f: %s, want %s", tc.attempt, tc.random, got, tc.want)
		}
	}
	if got := ConstantBackoff(3*time.Second).Delay(7, nil); got != 3*time.Second {
		t.Errorf("constant: %s", got)
	}
}

// TestBackoffDelayNeverOverflows: a late attempt's delay is capped, never wrapped into a
// negative duration (which would retry at once).
func TestBackoffDelayNeverOverflows(t *testing.T) {
	cases := []struct {
		name    string
		b       Backoff
		attempt int
		want    time.Duration
	}{
		{"no cap, attempt 30 of an hour ×10", Backoff{Base: time.Hour, Factor: 10}, 30, MaxBackoff},
		{"no cap, attempt 1000 doubling", Backoff{Base: time.Second, Factor: 2}, 1000, MaxBackoff},
		{"no cap, early attempt", Backoff{Base: time.Second, Factor: 2}, 3, 4 * time.Second},
		{"cap above MaxBackoff", Backoff{Base: time.Second, Factor: 2, Max: 100 * 24 * time.Hour}, 1000, MaxBackoff},
		{"cap below MaxBackoff", Backoff{Base: time.Second, Factor: 2, Max: time.Minute}, 1000, time.Minute},
		{"default, attempt 1000", DefaultBackoff, 1000, DefaultBackoff.Max},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.b.Delay(tc.attempt, func() float64 { return 0 }); got != tc.want {
				t.Fatalf("Delay(%d) = %s, want %s", tc.attempt, got, tc.want)
			}
		})
	}
}

func TestDueAt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		o    Options
		want time.Time
		err  bool
	}{
		{"none", Options{}, time.Time{}, false},
		{"in", Options{Delay: time.Hour}, now.Add(time.Hour), false},
		{"at wins over in", Options{Delay: time.Hour, At: now.Add(time.Minute)}, now.Add(time.Minute), false},
		{"past runs now", Options{At: now.Add(-time.Hour)}, time.Time{}, false},
		{"absurd", Options{At: now.AddDate(11, 0, 0)}, time.Time{}, true},
		{"past rejected", Options{At: now.Add(-time.Second), RejectPast: true}, time.Time{}, true},
		{"future with RejectPast", Options{At: now.Add(time.Second), RejectPast: true}, now.Add(time.Second), false},
	}
	for _, tc := range cases {
		got, err := tc.o.DueAt(now)
		if (err != nil) != tc.err || !got.Equal(tc.want) {
			t.Errorf("%s: %v %v", tc.name, got, err)
		}
	}
}

func TestIDsSortByTimeAndAreUnique(t *testing.T) {
	var s idSource
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	seen := map[string]bool{}
	for i := 0; i < 5000; i++ {
		id := s.next(base.Add(time.Duration(i/100) * time.Millisecond)) // 100 ids per ms
		if len(id) != 16 || seen[id] {
			t.Fatalf("id %q (len %d, dup %v)", id, len(id), seen[id])
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids do not sort by creation")
	}
	// a clock step back keeps ids increasing
	if back := s.next(base); back <= ids[len(ids)-1] {
		t.Fatalf("after a clock step back: %s <= %s", back, ids[len(ids)-1])
	}
}

func TestArgsUseJSONTags(t *testing.T) {
	type args struct {
		UserID int64   `json:"user_id"`
		Name   string  `json:"name"`
		Ratio  float64 `msgpack:"r"`
	}
	p, err := EncodeArgs(map[string]any{"user_id": 42, "name": "ada", "r": 0.5})
	if err != nil {
		t.Fatal(err)
	}
	var got args
	if err := DecodeArgs(p, &got); err != nil {
		t.Fatal(err)
	}
	if got != (args{42, "ada", 0.5}) {
		t.Fatalf("%+v", got)
	}
	if err := DecodeArgs([]byte{0xc1}, &got); !errors.Is(err, ErrBadPayload) {
		t.Fatalf("bad payload: %v", err)
	}
}

func TestValidPayload(t *testing.T) {
	ok, _ := EncodeArgs([]int{1, 2})
	cases := map[string]struct {
		p     []byte
		valid bool
	}{
		"empty":    {nil, true},
		"array":    {ok, true},
		"never":    {[]byte{0xc1}, false},
		"trailing": {append(append([]byte{}, ok...), 0x01), false},
		"cut":      {ok[:1], false},
	}
	for name, tc := range cases {
		if err := ValidPayload(tc.p); (err == nil) != tc.valid {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestControlErrors(t *testing.T) {
	base := errors.New("x")
	if err := SkipRetry(base); !IsSkipRetry(err) || !errors.Is(err, base) {
		t.Fatal("SkipRetry")
	}
	var ra *RetryAfterError
	if err := RetryAfter(time.Minute, base); !errors.As(err, &ra) || ra.Delay != time.Minute || !errors.Is(err, base) {
		t.Fatal("RetryAfter")
	}
	if err := (&FailedError{ID: "a", Message: "m"}); !errors.Is(err, ErrJobFailed) {
		t.Fatal("FailedError")
	}
	if !StateFailed.Terminal() || StatePending.Terminal() {
		t.Fatal("Terminal")
	}
}

// wantOptionError checks err is nil when want is "", else an *OptionError naming want.
func wantOptionError(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	var oe *OptionError
	if !errors.Is(err, ErrInvalidOption) || !errors.As(err, &oe) || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want an *OptionError naming %q", err, want)
	}
}
