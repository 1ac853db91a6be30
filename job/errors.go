package job

import (
	"errors"
	"fmt"
	"time"
)

// Errors a caller can test for with errors.Is.
var (
	// ErrInvalidOption is wrapped by every *OptionError.
	ErrInvalidOption = errors.New("chronoq: invalid option")
	// ErrNotFound means no job (or queue) with that id exists any more.
	ErrNotFound = errors.New("chronoq: not found")
	// ErrUnknownTask means no func is registered for the job's task name.
	ErrUnknownTask = errors.New("chronoq: unknown task")
	// ErrBadPayload means the job's arguments could not be decoded into the task's type.
	ErrBadPayload = errors.New("chronoq: undecodable payload")
	// ErrPanic means the task panicked; the job's error holds the panic value and stack.
	ErrPanic = errors.New("chronoq: task panicked")
	// ErrTimeout means the task overran its timeout.
	ErrTimeout = errors.New("chronoq: task timed out")
	// ErrLeaseExpired means the worker running the job stopped renewing its lease (it
	// crashed or lost Redis) and the job was taken back.
	ErrLeaseExpired = errors.New("chronoq: lease expired, worker lost")
	// ErrCanceled is returned by Wait for a canceled job, and is the cause
	// (context.Cause) of a running job's context when the job is asked to stop.
	ErrCanceled = errors.New("chronoq: job canceled")
	// ErrJobFailed is wrapped by the error Wait returns for a job that ended failed.
	ErrJobFailed = errors.New("chronoq: job failed")
	// ErrLate means the job started later after its due time than its SkipIfLate
	// allows, and was skipped.
	ErrLate = errors.New("chronoq: job skipped, too late")
)

// OptionError names an enqueue option whose value is out of range.
type OptionError struct {
	Option string // e.g. "Priority"
	Value  any
	Reason string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("chronoq: invalid option %s=%v: %s", e.Option, e.Value, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidOption) true.
func (e *OptionError) Unwrap() error { return ErrInvalidOption }

// skipRetryError fails a job at once, whatever retries it has left.
type skipRetryError struct{ err error }

func (e *skipRetryError) Error() string { return "skip retry: " + errString(e.err) }
func (e *skipRetryError) Unwrap() error { return e.err }

// SkipRetry wraps err so that the job fails at once instead of being retried
// (River's JobCancel, asynq's SkipRetry).
func SkipRetry(err error) error { return &skipRetryError{err: err} }

// IsSkipRetry reports whether err asks to fail without retrying.
func IsSkipRetry(err error) bool {
	var s *skipRetryError
	return errors.As(err, &s)
}

// RetryAfterError asks for the job to run again after Delay. It spends an attempt
// unless the job was given no retries at all, in which case it still fails.
type RetryAfterError struct {
	Delay time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("retry after %s: %s", e.Delay, errString(e.Err))
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter reschedules the job d from now instead of using its backoff policy.
func RetryAfter(d time.Duration, err error) error { return &RetryAfterError{Delay: d, Err: err} }

// FailedError is what Wait returns for a job that ended in the failed state.
type FailedError struct {
	ID      string
	Message string // the job's last error
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("chronoq: job %s failed: %s", e.ID, e.Message)
}
func (e *FailedError) Unwrap() error { return ErrJobFailed }

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
