package ranking

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestConfigJSON(t *testing.T) {
	for _, tc := range []struct {
		w    float64
		want string
	}{{8, `"w":8`}, {math.Inf(1), `"w":"inf"`}, {0, `"w":0`}} {
		data, err := json.Marshal(Config{Mode: ModeActive, Rule: RuleFixed, W: tc.w, Alpha: 0.1})
		if err != nil || !strings.Contains(string(data), tc.want) || !strings.Contains(string(data), `"mode":"active"`) {
			t.Errorf("w=%v: %s %v", tc.w, data, err)
		}
		if strings.Count(string(data), `"w"`) != 1 {
			t.Errorf("w=%v: w twice in %s", tc.w, data)
		}
	}
}
