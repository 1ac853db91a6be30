package dashboard_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/queue"
)

func storeFailure(id string) store.Failure { return store.Failure{ID: id, Error: "boom"} }

// serveFair fetches n jobs of q as worker "w" and acknowledges all but the last, the
// i-th as run for 10×i ms: its keys get worker time, a last service and one lease.
func serveFair(t *testing.T, c *queue.Client, q string, n int) {
	t.Helper()
	ctx := context.Background()
	s := clientstore.Of(c)
	var taken []store.Fetched
	// a fetch may stop at a lane or fair set its caller has not seen yet; the next learns it
	testutil.Eventually(t, 5*time.Second, "jobs fetched", func() bool {
		got, err := s.Fetch(ctx, q, "w", n-len(taken), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, got...)
		return len(taken) == n
	})
	for i, f := range taken[:n-1] {
		if _, err := s.Ack(ctx, q, "w", []store.Done{{ID: f.ID, Started: f.At, Fair: f.Fair,
			Sample: store.Sample{Task: "t", Ran: time.Duration(10*(i+1)) * time.Millisecond}}}); err != nil {
			t.Fatal(err)
		}
	}
}

// cookieJar keeps cookies for one test server (net/http/cookiejar would too, but it
// refuses the loopback test server's bare IP host for some cookie rules).
type cookieJar struct {
	mu      sync.Mutex
	cookies []*http.Cookie
}

func (j *cookieJar) SetCookies(u *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cs {
		kept := j.cookies[:0]
		for _, old := range j.cookies {
			if old.Name != c.Name {
				kept = append(kept, old)
			}
		}
		j.cookies = append(kept, c)
	}
}

func (j *cookieJar) Cookies(u *url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]*http.Cookie(nil), j.cookies...)
}
