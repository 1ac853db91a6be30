package store

import (
	"strconv"
	"strings"

	"github.com/chronoq/chronoq/ranking/fairshare"
)

// The limits of how much one script call or one round trip carries. Each has its one
// home here; the scripts that need one get it from scriptConsts (never a literal of
// their own), so Go and Lua cannot disagree.
//
// Most are bounded by Lua's unpack, which passes a table's values as a call's arguments
// and fails past Lua's C stack limit (LUAI_MAXCSTACK, 8000 values in Redis' Lua 5.1):
// a script that unpacks k values per job takes at most 8000/k jobs in one go.
const (
	// MaxFetch is the most jobs one fetch takes (fetch.lua caps its count to it): fetch
	// unpacks two values per job (ZADD's score and id, HSET's field and value), 2000 of
	// the 8000 unpack allows, and a worker's batch of 1000 jobs is far past the point
	// where a larger one saves round trips.
	MaxFetch = 1000

	// MaxBatch is the most jobs one enqueue call sends in one script run: enqueue.lua
	// receives 4 arguments per job and writes them with call_chunked, so the bound is
	// the size of one script call (4000 arguments, a few hundred KB), kept short so
	// that other clients' commands are not held up behind it.
	MaxBatch = 1000

	// RequeuePage is how many failed jobs one requeue_failed.lua run examines when it
	// pages through the failed set: its ids are unpacked (ZREM, HDEL), and a page is
	// short enough that a requeue of a million jobs never blocks Redis for long.
	RequeuePage = 1000

	// PurgePage is how many jobs a caller of Purge asks one purge.lua run to delete:
	// the script unpacks their ids (HMGET, ZREM, HDEL), and each run is short.
	PurgePage = 1000

	// unpackChunk is how many values call_chunked (lib.lua) and renew.lua pass to one
	// command: half of unpack's 8000, with room for the command's own arguments.
	unpackChunk = 4000

	// handBackChunk is how many leases one hand-back script run returns:
	// requeue_active.lua unpacks their ids (HMGET) and 2 values per job (ZADD).
	handBackChunk = 1000

	// LimitScan is how many lane-index entries (or fair keys of a band) one fetch
	// passes over because a limit holds them back, before it stops looking: a bound on
	// the fetch's work when many lanes or keys wait on their limits.
	LimitScan = 1000

	// skipPerKey is how many jobs of one fair key a fetch passes over in one visit
	// because their task is at its limit, before it holds the whole key back for that
	// fetch: a key whose next jobs are all of a limited task costs a bounded read.
	skipPerKey = 64

	// beatFiresPerRoundTrip is how many beat ticks FireBeats pipelines into one round
	// trip (one script run each): a bound on one pipeline's replies, not on a script.
	beatFiresPerRoundTrip = 1000
)

// scriptConsts are the limits the scripts use (and the fair quantum), by their Lua name. load prepends
// "local NAME = value" to each script that names one: one assignment at the top of the
// call, in place of the literal the script had.
var scriptConsts = []struct {
	name  string
	value int
}{
	{"MAX_FETCH", MaxFetch},
	{"REQUEUE_PAGE", RequeuePage},
	{"UNPACK_CHUNK", unpackChunk},
	{"FAIR_QUANTUM", fairshare.QuantumMs},
	{"LIMIT_SCAN", LimitScan},
	{"SKIP_PER_KEY", skipPerKey},
}

// constsFor declares the limits that script (lib parts included) names.
func constsFor(script string) string {
	var b strings.Builder
	for _, c := range scriptConsts {
		if wordIn(script, c.name) {
			b.WriteString("local " + c.name + " = " + strconv.Itoa(c.value) + "\n")
		}
	}
	return b.String()
}
