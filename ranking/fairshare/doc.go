// Package fairshare is the vocabulary of fair share between the keys of one queue
// (job.FairKey): its modes (off, lru, share), the bounds of a key's weight, KeyInfo
// (the key view), and Model, the reference order the dequeue script keeps in Redis,
// with its stated bound (docs/fairshare.md). The conformance suite holds the script
// to Model; Model's tests check the bound.
package fairshare
