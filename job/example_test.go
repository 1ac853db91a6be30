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

func ExampleRateLimit() {
	// at most 10 charges a second and 3 exports at a time, across every worker
	charge := job.NewTask[int]("stripe.charge", job.RateLimit("10/s"))
	export := job.NewTask[int]("reports.export", job.MaxRunning(3))
	fmt.Println(charge.Name(), export.Name())

	r, _ := job.ParseRate("100/m:5")
	fmt.Printf("%.4g/s, burst %d\n", r.PerSecond(), r.Burst)
	_, err := job.ParseRate("100/x")
	fmt.Println(err)
	// Output:
	// stripe.charge reports.export
	// 1.667/s, burst 5
	// chronoq: bad RateLimit "100/x": the unit "x" is not s, m or h
}
