package store

import (
	"context"
	"embed"
	"regexp"
	"strings"

	"github.com/redis/go-redis/v9"
)

//go:embed scripts/*.lua
var scriptFS embed.FS

// Each script is the part of lib.lua it uses followed by its own file; go-redis runs it
// with EVALSHA and loads it on the first NOSCRIPT. Redis runs a script's top level on
// every call, so a script carrying all of lib.lua would define every one of its
// functions on every call: measured, that alone cost 3 µs a call (5.7 against 2.7 µs
// for a script that returns at once), more than most scripts' own commands.
var (
	scriptEnqueue       = load("enqueue")
	scriptEnqueueOne    = load("enqueue_one")
	scriptEnqueueKeyed  = load("enqueue_keyed")
	scriptEnqueueFair   = load("enqueue_fair")
	scriptFairConfig    = load("fair_config")
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
	scriptLimitConfig   = load("limit_config")
	scriptLimitRecount  = load("limit_recount")
)

func load(name string) *redis.Script { return redis.NewScript(scriptSource(name)) }

// scriptSource is the text of the script name as Redis runs it: the limits it names
// (constsFor), the parts of lib.lua it uses, then its own file.
func scriptSource(name string) string {
	lib, err := scriptFS.ReadFile("scripts/lib.lua")
	if err != nil {
		panic(err)
	}
	body, err := scriptFS.ReadFile("scripts/" + name + ".lua")
	if err != nil {
		panic(err)
	}
	code := libFor(string(lib), string(body)) + string(body)
	return constsFor(code) + code
}

// libDecl matches a top-level declaration of lib.lua: "local function name(" or
// "local name =".
var libDecl = regexp.MustCompile(`^local (?:function )?([A-Za-z_][A-Za-z0-9_]*)`)

// libFor returns the declarations of lib (each with the comment lines just above it)
// that body uses, directly or through other declarations, in lib's order.
func libFor(lib, body string) string {
	type decl struct{ name, text string }
	var decls []decl
	var pending []string // comment and blank lines waiting for the next declaration
	for _, line := range strings.SplitAfter(lib, "\n") {
		if m := libDecl.FindStringSubmatch(line); m != nil {
			decls = append(decls, decl{m[1], strings.Join(pending, "") + line})
			pending = nil
			continue
		}
		if len(decls) > 0 && !strings.HasPrefix(line, "--") && strings.TrimSpace(line) != "" {
			decls[len(decls)-1].text += strings.Join(pending, "") + line // the body goes on
			pending = nil
			continue
		}
		pending = append(pending, line)
	}
	need := map[string]bool{}
	var visit func(text string)
	visit = func(text string) {
		for _, d := range decls {
			if !need[d.name] && wordIn(text, d.name) {
				need[d.name] = true
				visit(d.text)
			}
		}
	}
	visit(body)
	var b strings.Builder
	for _, d := range decls {
		if need[d.name] {
			b.WriteString(d.text)
		}
	}
	return b.String()
}

// wordIn tells whether name occurs in text as a whole word.
func wordIn(text, name string) bool {
	return regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`).MatchString(text)
}

// AllScripts lists every script, for tests and for preloading.
func AllScripts() map[string]*redis.Script {
	return map[string]*redis.Script{
		"enqueue": scriptEnqueue, "enqueue_one": scriptEnqueueOne, "enqueue_keyed": scriptEnqueueKeyed, "enqueue_fair": scriptEnqueueFair, "fair_config": scriptFairConfig, "fetch": scriptFetch, "ack": scriptAck, "fail": scriptFail,
		"requeue_active": scriptRequeueActive, "promote": scriptPromote, "cancel": scriptCancel,
		"requeue_failed": scriptRequeueFailed, "purge": scriptPurge, "claim": scriptClaim, "renew": scriptRenew, "beat_fire": scriptBeatFire, "activity": scriptActivity, "trim": scriptTrim,
		"limit_config": scriptLimitConfig, "limit_recount": scriptLimitRecount,
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
