// Package clientstore gives chronoq's own packages (the worker, the beat, the
// dashboard, the command line, tests and benches) the store behind a queue.Client. The
// public API does not expose it: the Redis model is the store's alone, and a user's
// program reaches Redis through queue.Client's methods.
package clientstore

import "github.com/chronoq/chronoq/internal/store"

var of func(client any) *store.Store

// Register is called once, by package queue, with the function that opens a client.
func Register(f func(client any) *store.Store) { of = f }

// Of returns the store of client, a *queue.Client.
func Of(client any) *store.Store { return of(client) }
