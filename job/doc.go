// Package job defines what a chronoq job is: its record, its options, its states,
// the typed Task a producer enqueues with and a worker registers a func for, and the
// control-flow errors a task may return.
//
// The package has no Redis in it: it is the vocabulary shared by the queue (producer)
// side and the worker (consumer) side.
//
// A task is declared once, in a package both sides import:
//
//	type ResizeArgs struct {
//		URL   string `json:"url"`
//		Width int    `json:"width"`
//	}
//
//	var Resize = job.NewTask[ResizeArgs]("images.resize", job.Queue("media"), job.MaxRetries(5))
//
// Arguments travel as msgpack data (never code). Struct fields use their `msgpack` tag,
// else their `json` tag, else their Go name, so a JSON object sent by another language
// decodes into the same struct.
package job
