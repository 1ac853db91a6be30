package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

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

// loadConfig reads a config file; an unknown key is an error that names it and its line.
func loadConfig(path string) (fileConfig, error) {
	var c fileConfig
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), " in type cli.fileConfig", "")
		return c, fmt.Errorf("config %s: %s (known keys: redis, namespace, queues, strict, concurrency, shutdown_timeout, beat, beat_config, metrics_addr)", path, msg)
	}
	for i, q := range c.Queues {
		if q.Name == "" {
			return c, fmt.Errorf("config %s: queues[%d] has no name", path, i)
		}
		if q.Weight < 0 || q.Concurrency < 0 {
			return c, fmt.Errorf("config %s: queue %q: weight and concurrency must not be negative", path, q.Name)
		}
	}
	if c.Concurrency < 0 {
		return c, fmt.Errorf("config %s: concurrency must not be negative", path)
	}
	return c, nil
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
