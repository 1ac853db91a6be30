package store

import (
	"context"
	"embed"
	"strings"

	"github.com/redis/go-redis/v9"
)

//go:embed scripts/*.lua
var scriptFS embed.FS

// Each script is lib.lua followed by its own file; go-redis runs it with EVALSHA and
// loads it on the first NOSCRIPT.
var (
	scriptEnqueue       = load("enqueue")
	scriptEnqueueOne    = load("enqueue_one")
	scriptEnqueueKeyed  = load("enqueue_keyed")
	scriptFetch         = load("fetch")
	scriptAck           = load("ack")
	scriptFail          = load("fail")
	scriptRequeueActive = load("requeue_active")
	scriptPromote       = load("promote")
	scriptCancel        = load("cancel")
	scriptRequeueFailed = load("requeue_failed")
	scriptPurge         = load("purge")
	scriptClaim         = load("claim")
	scriptRenew         = load("renew")
	scriptBeatFire      = load("beat_fire")
	scriptActivity      = load("activity")
	scriptTrim          = load("trim")
)

func load(name string) *redis.Script {
	lib, err := scriptFS.ReadFile("scripts/lib.lua")
	if err != nil {
		panic(err)
	}
	body, err := scriptFS.ReadFile("scripts/" + name + ".lua")
	if err != nil {
		panic(err)
	}
	return redis.NewScript(string(lib) + string(body))
}

// AllScripts lists every script, for tests and for preloading.
func AllScripts() map[string]*redis.Script {
	return map[string]*redis.Script{
		"enqueue": scriptEnqueue, "enqueue_one": scriptEnqueueOne, "enqueue_keyed": scriptEnqueueKeyed, "fetch": scriptFetch, "ack": scriptAck, "fail": scriptFail,
		"requeue_active": scriptRequeueActive, "promote": scriptPromote, "cancel": scriptCancel,
		"requeue_failed": scriptRequeueFailed, "purge": scriptPurge, "claim": scriptClaim, "renew": scriptRenew, "beat_fire": scriptBeatFire, "activity": scriptActivity, "trim": scriptTrim,
	}
}

// LoadScripts loads every script into Redis's script cache, so that pipelined
// EVALSHA calls (which cannot fall back to EVAL) find them.
func (s *Store) LoadScripts(ctx context.Context) error {
	for _, sc := range AllScripts() {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
