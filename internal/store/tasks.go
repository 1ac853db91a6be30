package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chronoq/chronoq/job"
)

// taskDefaults is how a task's declared options are stored: what a task declaration
// may set for every job of the task.
type taskDefaults struct {
	Queue      string        `json:"queue"`
	Priority   int           `json:"priority"`
	MaxRetries int           `json:"max_retries"`
	Backoff    job.Backoff   `json:"backoff"`
	Timeout    time.Duration `json:"timeout_ns"`
	Retention  time.Duration `json:"retention_ns"`
}

// SetTaskDefaults records the options workers declare for their tasks (job.NewTask's
// options), so that a job enqueued by name — from another service, the CLI, the HTTP
// API — gets them as a typed enqueue would. The last worker to start wins.
func (s *Store) SetTaskDefaults(ctx context.Context, tasks map[string]job.Options) error {
	if len(tasks) == 0 {
		return nil
	}
	fields := make([]any, 0, 2*len(tasks))
	for name, o := range tasks {
		data, err := json.Marshal(taskDefaults{Queue: o.Queue, Priority: o.Priority, MaxRetries: o.MaxRetries,
			Backoff: o.Backoff, Timeout: o.Timeout, Retention: o.Retention})
		if err != nil {
			return err
		}
		fields = append(fields, name, string(data))
	}
	return s.rdb.HSet(ctx, tasksKey(s.ns), fields...).Err()
}

// TaskDefaults returns, for each of tasks that a worker has declared options for, those
// options (to go before a call's own); tasks without any are absent.
func (s *Store) TaskDefaults(ctx context.Context, tasks []string) (map[string][]job.Option, error) {
	out := map[string][]job.Option{}
	if len(tasks) == 0 {
		return out, nil
	}
	vals, err := s.rdb.HMGet(ctx, tasksKey(s.ns), tasks...).Result()
	if err != nil {
		return nil, err
	}
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var d taskDefaults
		if err := json.Unmarshal([]byte(str), &d); err != nil {
			return nil, fmt.Errorf("store: declared options of task %q: %w", tasks[i], err)
		}
		out[tasks[i]] = []job.Option{job.Queue(d.Queue), job.Priority(d.Priority), job.MaxRetries(d.MaxRetries),
			job.WithBackoff(d.Backoff), job.Timeout(d.Timeout), job.Retention(d.Retention)}
	}
	return out, nil
}
