package ranking

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
)

// Mode is how a queue orders its pending jobs.
type Mode string

// The modes.
const (
	ModeFIFO   Mode = "fifo"
	ModeShadow Mode = "shadow"
	ModeActive Mode = "active"
)

// Rule is how the active mode picks between lanes.
type Rule string

// The rules.
const (
	RuleFixed Rule = "fixed" // smallest arrival + W × predicted
	RuleHRRN  Rule = "hrrn"  // highest (waited + predicted) / predicted
)

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("chronoq: invalid ranking config")

// Config is a queue's ranking configuration, kept in Redis.
type Config struct {
	Mode Mode `json:"mode"`
	Rule Rule `json:"rule"`
	// W is the aging weight of RuleFixed, in ms of waiting per ms of predicted work
	// (0 is FIFO; +Inf is shortest-predicted-first without aging; "inf" in JSON).
	W float64 `json:"w"`
	// Alpha is the weight of each new duration in the learned mean (EWMA), 0 < Alpha ≤ 1.
	Alpha float64 `json:"alpha"`
}

// MarshalJSON writes an infinite W as "inf", which JSON numbers cannot hold.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	if !math.IsInf(c.W, 1) {
		return json.Marshal(plain(c))
	}
	return json.Marshal(struct {
		plain
		W string `json:"w"`
	}{plain(c), "inf"})
}

// DefaultConfig is what a queue has until it is configured: fifo, and the rule and
// weights the active mode starts with when switched on.
func DefaultConfig() Config {
	return Config{Mode: ModeFIFO, Rule: DefaultRule, W: DefaultW, Alpha: DefaultAlpha}
}

// MaxW is the largest finite aging weight (beyond it, use +Inf): larger ones would
// overflow the scripts' arithmetic.
const MaxW = 1e6

// MaxPriorMs is the largest prior mean run time (ms): ten years, as job.MaxHorizon
// bounds a job's own estimate. The rules multiply and divide by predictions, and an
// infinite one makes them NaN.
const MaxPriorMs = 10 * 365 * 24 * 3600 * 1000.0

// ValidatePriors checks prior mean run times (ms per task): each must be a finite
// number above 0 and at most MaxPriorMs. The error, which wraps ErrInvalidConfig,
// names the first bad task in name order, its value and the bounds.
func ValidatePriors(priors map[string]float64) error {
	tasks := make([]string, 0, len(priors))
	for t := range priors {
		tasks = append(tasks, t)
	}
	sort.Strings(tasks)
	for _, t := range tasks {
		// written so that NaN, which fails every comparison, fails it
		if ms := priors[t]; !(ms > 0 && ms <= MaxPriorMs) {
			return fmt.Errorf("%w: prior of task %q is %v ms; it must be a finite number above 0 and at most %.0f (MaxPriorMs, 10 years)",
				ErrInvalidConfig, t, ms, float64(MaxPriorMs))
		}
	}
	return nil
}

// Defaults of the active mode (chosen from the simulations in docs/ranking.md).
const (
	DefaultRule  = RuleHRRN
	DefaultW     = 16.0
	DefaultAlpha = 0.1
)

// Validate reports the first field out of range.
func (c Config) Validate() error {
	switch c.Mode {
	case ModeFIFO, ModeShadow, ModeActive:
	default:
		return fmt.Errorf("%w: mode %q (fifo, shadow or active)", ErrInvalidConfig, c.Mode)
	}
	switch c.Rule {
	case RuleFixed, RuleHRRN:
	default:
		return fmt.Errorf("%w: rule %q (fixed or hrrn)", ErrInvalidConfig, c.Rule)
	}
	if math.IsNaN(c.W) || c.W < 0 || (c.W > MaxW && !math.IsInf(c.W, 1)) {
		return fmt.Errorf("%w: w %v must be between 0 and %g, or +Inf", ErrInvalidConfig, c.W, float64(MaxW))
	}
	if !(c.Alpha > 0 && c.Alpha <= 1) {
		return fmt.Errorf("%w: alpha %v must be in (0, 1]", ErrInvalidConfig, c.Alpha)
	}
	return nil
}

// ParseMode reads a mode name.
func ParseMode(s string) (Mode, error) {
	m := Mode(s)
	c := DefaultConfig()
	c.Mode = m
	return m, c.Validate()
}

// FormatW writes W as the scripts read it ("inf" for +Inf).
func FormatW(w float64) string {
	if math.IsInf(w, 1) {
		return "inf"
	}
	return strconv.FormatFloat(w, 'g', -1, 64)
}

// ParseW reads what FormatW wrote.
func ParseW(s string) (float64, error) {
	if s == "inf" {
		return math.Inf(1), nil
	}
	return strconv.ParseFloat(s, 64)
}
