package store

import (
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// WorkerInfo is what a worker publishes about itself with every heartbeat.
type WorkerInfo struct {
	ID          string         `json:"id"`
	Host        string         `json:"host"`
	PID         int            `json:"pid"`
	Queues      []string       `json:"queues"`
	Weights     map[string]int `json:"weights,omitempty"`
	Strict      bool           `json:"strict"`
	Concurrency int            `json:"concurrency"`
	Slots       int            `json:"slots"` // the slots now: Concurrency, or the autoscaled size
	Running     []RunningJob   `json:"running"`
	Started     time.Time      `json:"started"`
	Beat        time.Time      `json:"beat"`
}

// RunningJob is one job a worker is running.
type RunningJob struct {
	ID      string    `json:"id"`
	Queue   string    `json:"queue"`
	Task    string    `json:"task"`
	Started time.Time `json:"started"`
}

// Heartbeat records w as alive until now+ttl.
func (s *Store) Heartbeat(ctx context.Context, w WorkerInfo, ttl time.Duration) error {
	w.Beat = s.now().UTC()
	data, err := json.Marshal(w)
	if err != nil {
		return err
	}
	pipe := s.rdb.Pipeline()
	pipe.Set(ctx, workerKey(s.ns, w.ID), data, ttl)
	pipe.ZAdd(ctx, workersKey(s.ns), redisZ{Score: float64(s.now().Add(ttl).UnixMilli()), Member: w.ID})
	_, err = pipe.Exec(ctx)
	return err
}

// Unregister removes a stopped worker.
func (s *Store) Unregister(ctx context.Context, id string) error {
	pipe := s.rdb.Pipeline()
	pipe.Del(ctx, workerKey(s.ns, id))
	pipe.ZRem(ctx, workersKey(s.ns), id)
	_, err := pipe.Exec(ctx)
	return err
}

// Workers lists the workers whose heartbeat is current, dropping the stale ones.
func (s *Store) Workers(ctx context.Context) ([]WorkerInfo, error) {
	now := strconv.FormatInt(s.nowMs(), 10)
	if err := s.rdb.ZRemRangeByScore(ctx, workersKey(s.ns), "-inf", "("+now).Err(); err != nil {
		return nil, err
	}
	ids, err := s.rdb.ZRange(ctx, workersKey(s.ns), 0, -1).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = workerKey(s.ns, id)
	}
	// one GET per worker: the worker keys belong to no queue, so no MGET across slots
	pipe := s.rdb.Pipeline()
	cmds := make([]interface{ Result() (string, error) }, len(keys))
	for i, key := range keys {
		cmds[i] = pipe.Get(ctx, key)
	}
	_, _ = pipe.Exec(ctx)
	var out []WorkerInfo
	for _, c := range cmds {
		data, err := c.Result()
		if err != nil {
			continue
		}
		var w WorkerInfo
		if json.Unmarshal([]byte(data), &w) == nil {
			out = append(out, w)
		}
	}
	return out, nil
}
