package store

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/chronoq/chronoq/internal/redistest"
)

// Every key a script touches must come from KEYS (directly, or through a local or a
// lane map filled from KEYS): a key built inside a script breaks on Redis Cluster. The
// scripts are short and regular, so a textual check is enough: the key argument of
// every redis.call is never a string literal or a concatenation, and KEYS entries are
// never concatenated.
func TestScriptsNeverBuildKeys(t *testing.T) {
	call := regexp.MustCompile(`redis\.call\('(\w+)',\s*([^,)]+)`)
	concatKeys := regexp.MustCompile(`KEYS\[[^\]]+\]\s*\.\.|\.\.\s*KEYS\[`)
	entries, err := scriptFS.ReadDir("scripts")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src, _ := scriptFS.ReadFile("scripts/" + e.Name())
		text := string(src)
		if concatKeys.MatchString(text) {
			t.Errorf("%s concatenates a KEYS entry", e.Name())
		}
		if e.Name() != "lib.lua" && !strings.Contains(text, "-- KEYS[1]") {
			t.Errorf("%s has no KEYS/ARGV header", e.Name())
		}
		for _, m := range call.FindAllStringSubmatch(text, -1) {
			cmd, key := m[1], strings.TrimSpace(m[2])
			if cmd == "PUBLISH" { // a channel, not a key
				continue
			}
			if strings.Contains(key, "..") || strings.HasPrefix(key, "'") || strings.HasPrefix(key, `"`) {
				t.Errorf("%s: %s on a built key %q", e.Name(), cmd, key)
			}
		}
	}
}

// SCRIPT LOAD compiles a script: a syntax error in any of them fails here.
func TestEveryScriptCompiles(t *testing.T) {
	s := New(redistest.Client(t), "t", nil)
	if err := s.LoadScripts(context.Background()); err != nil {
		t.Fatal(err)
	}
}
