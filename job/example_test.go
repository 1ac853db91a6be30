package job_test

import (
	"fmt"
	"time"

	"github.com/chronoq/chronoq/job"
)

type ResizeArgs struct {
	URL   string `json:"url"`
	Width int    `json:"width"`
}

func ExampleNewTask() {
	resize := job.NewTask[ResizeArgs]("images.resize", job.Queue("media"), job.MaxRetries(5))
	payload, _ := resize.Encode(ResizeArgs{URL: "cat.png", Width: 640})
	args, _ := resize.Decode(payload)
	fmt.Println(resize.Name(), args.URL, args.Width)
	// Output: images.resize cat.png 640
}

func ExampleBackoff_Delay() {
	b := job.ExponentialBackoff(time.Second, 10*time.Second)
	b.Jitter = 0 // deterministic for the example
	for attempt := 1; attempt <= 5; attempt++ {
		fmt.Print(b.Delay(attempt, nil), " ")
	}
	fmt.Println()
	// Output: 1s 2s 4s 8s 10s
}

func ExampleOptions_Apply() {
	_, err := job.DefaultOptions().Apply(job.Priority(12))
	fmt.Println(err)
	// Output: chronoq: invalid option Priority=12: must be between 0 and 9 (9 runs first)
}
