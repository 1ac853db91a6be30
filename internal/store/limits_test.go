package store

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestScriptLimitsComeFromGo: the limits Go and the scripts share are declared once, in
// Go. Every script that names one gets it with Go's value; no script source declares
// one itself or still carries one of the old literals in their place; and the scripts
// that rely on each limit name it, so a script cannot quietly keep a number of its own.
func TestScriptLimitsComeFromGo(t *testing.T) {
	users := map[string][]string{ // the scripts (or lib.lua) each limit bounds
		"MAX_FETCH":    {"fetch"},
		"REQUEUE_PAGE": {"requeue_failed"},
		"UNPACK_CHUNK": {"renew", "enqueue"}, // enqueue through lib.lua's call_chunked
		"FAIR_QUANTUM": {"fetch"},
		"LIMIT_SCAN":   {"fetch"},
		"SKIP_PER_KEY": {"fetch"},
	}
	for _, c := range scriptConsts {
		decl := "local " + c.name + " = " + strconv.Itoa(c.value) + "\n"
		if len(users[c.name]) == 0 {
			t.Errorf("%s: no script listed as using it", c.name)
		}
		for _, name := range users[c.name] {
			if src := scriptSource(name); !strings.HasPrefix(src, decl) && !strings.Contains(src, "\n"+decl) {
				t.Errorf("%s.lua does not declare %q", name, decl)
			}
		}
		for name := range AllScripts() {
			if got := strings.Count(scriptSource(name), "local "+c.name+" ="); got > 1 {
				t.Errorf("%s.lua declares %s %d times", name, c.name, got)
			}
		}
	}
	own := regexp.MustCompile(`(?m)^\s*local (MAX_FETCH|REQUEUE_PAGE|UNPACK_CHUNK|FAIR_QUANTUM|LIMIT_SCAN|SKIP_PER_KEY|PAGE)\s*=`)
	// the old literals, not a unit conversion (clock_ms's "* 1000", "/ 1000")
	literal := regexp.MustCompile(`(^|[^*/ ]\s*)\b(1000|3999|4000)\b`)
	entries, err := scriptFS.ReadDir("scripts")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src, _ := scriptFS.ReadFile("scripts/" + e.Name())
		if m := own.FindString(string(src)); m != "" {
			t.Errorf("%s declares a shared limit itself: %q", e.Name(), strings.TrimSpace(m))
		}
		for i, line := range strings.Split(string(src), "\n") {
			code, _, _ := strings.Cut(line, "--")
			if literal.MatchString(code) {
				t.Errorf("%s:%d: a literal limit %q (name it in limits.go)", e.Name(), i+1, strings.TrimSpace(code))
			}
		}
	}
}

// call_chunked and renew.lua split lists of pairs (field and value, score and member)
// at unpackChunk values: an odd chunk would split a pair between two commands.
func TestUnpackChunkKeepsPairsTogether(t *testing.T) {
	if unpackChunk%2 != 0 || unpackChunk <= 0 || unpackChunk > 7990 {
		t.Fatalf("unpackChunk is %d: it must be even, and under Lua's unpack limit of about 8000", unpackChunk)
	}
}
