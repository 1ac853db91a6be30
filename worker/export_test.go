package worker

import "time"

// SetScaleEvery sets how often w's autoscaling rule runs (a second); tests run it
// fast. Call it before Start.
func SetScaleEvery(w *Worker, d time.Duration) {
	if w.scaler != nil {
		w.scaler.every = d
	}
}

// Resize sets w's slot count as the autoscaling rule does.
func Resize(w *Worker, n int) { w.resize(n) }
