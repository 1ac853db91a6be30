// Package testutil holds small helpers shared by chronoq's tests: a settable clock
// and a condition waiter (tests wait on conditions with deadlines, never on sleeps),
// leak checks, a log buffer, and a check of what a package links.
package testutil
