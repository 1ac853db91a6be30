package beat

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/chronoq/chronoq/job"
	"gopkg.in/yaml.v3"
)

// fileEntry is an entry as written in a beat file (YAML, the format of most
// deployment configuration): durations as text ("2h"), args as any YAML value.
type fileEntry struct {
	Name         string             `yaml:"name"`
	Spec         string             `yaml:"spec"`
	TimeZone     string             `yaml:"time_zone"`
	Task         string             `yaml:"task"`
	Args         any                `yaml:"args"`
	Queue        string             `yaml:"queue"`
	Priority     *int               `yaml:"priority"`
	Retries      *int               `yaml:"retries"`
	Timeout      string             `yaml:"timeout"`
	Estimate     string             `yaml:"estimate"`
	Cost         map[string]float64 `yaml:"cost"`
	Overlap      string             `yaml:"overlap"`
	CatchUp      string             `yaml:"catch_up"`
	CatchUpLimit int                `yaml:"catch_up_limit"`
	Disabled     bool               `yaml:"disabled"`
}

// LoadFile reads beat entries from YAML:
//
//	entries:
//	  - name: nightly-retrain
//	    spec: "0 2 * * *"
//	    time_zone: Europe/Berlin
//	    task: ml.retrain
//	    args: {model: ranker}
//	    queue: ml
//	    timeout: 2h
//	    overlap: skip
//	    catch_up: latest
//
// An unknown key, a malformed spec or time zone, or a duplicate name is an error that
// names the entry (or its position); every bad entry is reported, not just the first.
func LoadFile(r io.Reader) ([]Entry, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var f struct {
		Entries []fileEntry `yaml:"entries"`
	}
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: beat file: %v", ErrInvalidEntry, err)
	}
	var out []Entry
	var errs []error
	seen := map[string]bool{}
	for i, fe := range f.Entries {
		label := fe.Name
		if label == "" {
			label = fmt.Sprintf("#%d", i+1)
		}
		e := Entry{Name: fe.Name, Spec: fe.Spec, TimeZone: fe.TimeZone, Task: fe.Task, Queue: fe.Queue,
			Priority: fe.Priority, Retries: fe.Retries, Overlap: Overlap(fe.Overlap), CatchUp: CatchUp(fe.CatchUp),
			CatchUpLimit: fe.CatchUpLimit, Disabled: fe.Disabled, Cost: fe.Cost}
		var err error
		if e.Timeout, err = fileDuration(label, "timeout", fe.Timeout); err != nil {
			errs = append(errs, err)
			continue
		}
		if e.Estimate, err = fileDuration(label, "estimate", fe.Estimate); err != nil {
			errs = append(errs, err)
			continue
		}
		if fe.Args != nil {
			p, err := job.EncodeArgs(fe.Args)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w %q: args: %v", ErrInvalidEntry, label, err))
				continue
			}
			e.Args = p
		}
		if seen[e.Name] {
			errs = append(errs, fmt.Errorf("%w %q: defined twice", ErrInvalidEntry, label))
			continue
		}
		seen[e.Name] = true
		if _, err := e.compile(); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, e)
	}
	return out, errors.Join(errs...)
}

// fileDuration reads the duration field of the entry label ("": 0).
func fileDuration(label, field, text string) (time.Duration, error) {
	if text == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, fmt.Errorf("%w %q: %s %q is not a duration (e.g. 90s, 2h)", ErrInvalidEntry, label, field, text)
	}
	return d, nil
}
