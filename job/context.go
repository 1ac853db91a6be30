package job

import "context"

type ctxKey struct{}

// NewContext returns ctx carrying j; the worker gives every handler such a context.
func NewContext(ctx context.Context, j *Job) context.Context {
	return context.WithValue(ctx, ctxKey{}, j)
}

// FromContext returns the job a handler is running, or nil outside a handler.
func FromContext(ctx context.Context) *Job {
	j, _ := ctx.Value(ctxKey{}).(*Job)
	return j
}
