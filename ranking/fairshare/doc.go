// Package fairshare is the vocabulary of fair share between the keys of one queue
// (job.FairKey): its modes (off, lru, share), the bounds of a key's weight, and Model,
// the reference order the dequeue script is to keep in Redis, with its stated bound.
//
// Fair share is being built (issue 13, docs/fairshare.md): today only the key
// travels with a job, and this package's Model is what the script will be tested
// against.
package fairshare
