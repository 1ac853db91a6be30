package main

import (
	"time"

	"github.com/chronoq/chronoq/job"
)

// This file is what a real deployment keeps in its own package (say, tasks) that the
// worker binary and the Go producers import: argument and result types, and the task
// declarations with their queue and retry policy. Services that do not import it
// enqueue by name (see secondService in main.go).

// The seed's three queues.
const (
	QueueML      = "ml"      // model training and inference: few, long, heavy jobs
	QueueData    = "data"    // CSV processing, aggregation, ETL
	QueueDefault = "default" // health checks, notifications, cleanup
)

// ModelConfig is a training run's hyperparameters.
type ModelConfig struct {
	NEstimators int `json:"n_estimators"`
	MaxDepth    int `json:"max_depth"`
}

// TrainArgs are ml.distributed_training's arguments. The json tags are the wire names:
// another service sends {"model_config": {...}, "dataset_path": "..."}.
type TrainArgs struct {
	Model       string      `json:"model"`
	ModelConfig ModelConfig `json:"model_config"`
	DatasetPath string      `json:"dataset_path"`
}

// TrainResult is what a training returns.
type TrainResult struct {
	Model    string  `json:"model"`
	AvgScore float64 `json:"avg_score"`
	Attempt  int     `json:"attempt"`
}

// Enqueued is the result of a task that fans out (the retrain, the hourly data run):
// the ids of the jobs it enqueued, like the task ids the seed's tasks return.
type Enqueued struct {
	Jobs []string `json:"jobs"`
}

// CSVArgs are data.process_large_csv's arguments.
type CSVArgs struct {
	FilePath        string `json:"file_path"`
	OutputPath      string `json:"output_path"`
	Transformations struct {
		Filter    map[string]float64 `json:"filter"`
		NumChunks int                `json:"num_chunks"`
	} `json:"transformations"`
}

// CSVResult is what processing one file returns.
type CSVResult struct {
	OutputPath string `json:"output_path"`
	Chunks     int    `json:"chunks"`
}

// Pong is simple.ping's result.
type Pong struct {
	Status string `json:"status"`
	Worker string `json:"worker"`
}

// retryPolicy is the seed's "retry up to 3 times with exponential backoff"
// (countdown=60 * 2**retries): 1, 2, 4 minutes. Add Jitter when many jobs can fail at
// once (a dependency's outage), so that their retries do not arrive in step.
var retryPolicy = []job.Option{
	job.MaxRetries(3),
	job.WithBackoff(job.Backoff{Base: time.Minute, Factor: 2, Max: 30 * time.Minute}),
}

// NoArgs is the argument type of tasks that take none.
type NoArgs struct{}

// The tasks. Each names its queue, so producers need not; priorities and timeouts can be
// set per task and overridden per job.
var (
	DistributedTraining = job.NewTask[TrainArgs]("ml.distributed_training",
		append([]job.Option{job.Queue(QueueML), job.Timeout(2 * time.Hour)}, retryPolicy...)...)
	RetrainModels = job.NewTask[NoArgs]("ml.retrain_models", job.Queue(QueueML), job.Priority(7))

	ProcessLargeCSV = job.NewTask[CSVArgs]("data.process_large_csv",
		append([]job.Option{job.Queue(QueueData), job.Timeout(30 * time.Minute)}, retryPolicy...)...)
	ProcessNewData = job.NewTask[NoArgs]("data.process_new_data", job.Queue(QueueData))

	Ping               = job.NewTask[NoArgs]("simple.ping", job.Queue(QueueDefault), job.MaxRetries(0))
	CheckClusterHealth = job.NewTask[NoArgs]("simple.check_cluster_health", job.Queue(QueueDefault), job.MaxRetries(0))
)
