package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/worker"
	"gopkg.in/yaml.v3"
)

// fileConfig is run's optional YAML config file. Precedence: flag, then environment
// variable, then this file, then the built-in default.
type fileConfig struct {
	Redis           string        `yaml:"redis"`
	Namespace       string        `yaml:"namespace"`
	Queues          []fileQueue   `yaml:"queues"`
	Strict          bool          `yaml:"strict"`
	Concurrency     int           `yaml:"concurrency"`
	Autoscale       string        `yaml:"autoscale"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	Beat            bool          `yaml:"beat"`
	BeatConfig      string        `yaml:"beat_config"`
	MetricsAddr     string        `yaml:"metrics_addr"`
}

type fileQueue struct {
	Name        string `yaml:"name"`
	Weight      int    `yaml:"weight"`
	Concurrency int    `yaml:"concurrency"`
}

// loadConfig reads a config file; an unknown key, a duration without its unit, a number
// out of range or a bad queue name is an error that names the key and its line.
func loadConfig(path string) (fileConfig, error) {
	var c fileConfig
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	yamlErr := func(err error) error {
		msg := strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), " in type cli.fileConfig", "")
		return fmt.Errorf("config %s: %s (known keys: redis, namespace, queues, strict, concurrency, autoscale, shutdown_timeout, beat, beat_config, metrics_addr)", path, msg)
	}
	// read as nodes first: the decoder takes a bare 30 for 30ns, and nodes have lines
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return c, yamlErr(err)
	}
	lines := map[string]int{}
	if len(root.Content) > 0 {
		if err := scanConfig(root.Content[0], reflect.TypeOf(c), "", lines); err != nil {
			return c, fmt.Errorf("config %s: %w", path, err)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, yamlErr(err)
	}
	bad := func(key, format string, a ...any) error {
		at := ""
		if l, ok := lines[key]; ok {
			at = fmt.Sprintf("line %d: ", l)
		}
		return fmt.Errorf("config %s: %s%s: %s", path, at, key, fmt.Sprintf(format, a...))
	}
	seen := map[string]bool{}
	for i, q := range c.Queues {
		key := fmt.Sprintf("queues[%d]", i)
		if q.Name == "" {
			return c, bad(key, "has no name")
		}
		if err := job.ValidateQueueName(q.Name); err != nil {
			return c, bad(key+".name", "%v", err)
		}
		if seen[q.Name] {
			return c, bad(key+".name", "%q is listed twice", q.Name)
		}
		seen[q.Name] = true
		if q.Weight < 0 || q.Weight > worker.MaxWeight {
			return c, bad(key+".weight", "%d is out of range (0 to %d; 0 means 1)", q.Weight, worker.MaxWeight)
		}
		if q.Concurrency < 0 || q.Concurrency > worker.MaxConcurrency {
			return c, bad(key+".concurrency", "%d is out of range (0 to %d; 0 means no cap of its own)", q.Concurrency, worker.MaxConcurrency)
		}
	}
	if c.Concurrency < 0 || c.Concurrency > worker.MaxConcurrency {
		return c, bad("concurrency", "%d is out of range (0 to %d; 0 means 10)", c.Concurrency, worker.MaxConcurrency)
	}
	if _, err := parseAutoscale(c.Autoscale); err != nil {
		return c, bad("autoscale", "%v", err)
	}
	if c.ShutdownTimeout < 0 || c.ShutdownTimeout > worker.MaxConfigDuration {
		return c, bad("shutdown_timeout", "%s is out of range (0 to %s)", c.ShutdownTimeout, worker.MaxConfigDuration)
	}
	return c, nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// scanConfig walks the mapping n, decoded into a t: it notes each key's line in lines
// ("queues[1].weight": 5) and refuses a time.Duration field written as anything but a
// Go duration with its unit. Keys t does not have are left to the decoder, which names
// them.
func scanConfig(n *yaml.Node, t reflect.Type, path string, lines map[string]int) error {
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, v := n.Content[i].Value, n.Content[i+1]
		f, ok := fieldByTag(t, key)
		if !ok {
			continue
		}
		name := path + key
		lines[name] = v.Line
		switch {
		case f.Type == durationType:
			if err := checkDuration(v, name); err != nil {
				return err
			}
		case f.Type.Kind() == reflect.Slice && v.Kind == yaml.SequenceNode:
			for j, item := range v.Content {
				lines[fmt.Sprintf("%s[%d]", name, j)] = item.Line
				if err := scanConfig(item, f.Type.Elem(), fmt.Sprintf("%s[%d].", name, j), lines); err != nil {
					return err
				}
			}
		case v.Kind == yaml.MappingNode:
			if err := scanConfig(v, f.Type, name+".", lines); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkDuration(v *yaml.Node, key string) error {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	val, what := v.Value, "is not a duration"
	switch {
	case v.Kind != yaml.ScalarNode:
		val = "this value"
	case v.Tag == "!!null":
		return nil // "key:" with no value: the default
	case v.Tag == "!!str":
		if _, err := time.ParseDuration(v.Value); err == nil {
			return nil
		}
		val = strconv.Quote(v.Value)
	case v.Tag == "!!int" || v.Tag == "!!float":
		what = "is a number without a unit"
	}
	return fmt.Errorf("line %d: %s: %s %s; write a duration with its unit, e.g. \"30s\" or \"2m\"", v.Line, key, val, what)
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// queuesSpec writes the file's queues in the --queues syntax.
func (c fileConfig) queuesSpec() string {
	var parts []string
	for _, q := range c.Queues {
		parts = append(parts, q.Name+":"+strconv.Itoa(q.Weight)+":"+strconv.Itoa(q.Concurrency))
	}
	return strings.Join(parts, ",")
}

// configPath finds --config before the flags are defined, since the file supplies
// their defaults.
func configPath(args []string) string {
	for i, a := range args {
		for _, p := range []string{"--config", "-config"} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v
			}
		}
	}
	return os.Getenv("CHRONOQ_CONFIG")
}

// pick returns the first non-empty of env (looked up by name), file and def.
func pick(envName, file, def string) string {
	if v := os.Getenv(envName); v != "" {
		return v
	}
	if file != "" {
		return file
	}
	return def
}
