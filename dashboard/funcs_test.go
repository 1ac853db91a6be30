package dashboard

import (
	"testing"
	"time"
)

// TestAgo: the fair page's last service reads compactly at every scale, and a time a
// little ahead (Redis's clock against this process's) reads as just now.
func TestAgo(t *testing.T) {
	ago := funcs["ago"].(func(time.Time) string)
	now := time.Now()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-2 * time.Second, "just now"}, {0, "just now"}, {4200 * time.Millisecond, "4.2 s ago"}, {3*time.Minute + 10*time.Second, "3 min ago"},
		{5*time.Hour + time.Minute, "5 h ago"}, {47 * time.Hour, "47 h ago"}, {3*24*time.Hour + time.Hour, "3 d ago"},
	} {
		if got := ago(now.Add(-tc.d)); got != tc.want {
			t.Errorf("ago(now - %v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
