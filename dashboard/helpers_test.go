package dashboard_test

import (
	"net/http"
	"net/url"
	"sync"

	"github.com/chronoq/chronoq/internal/store"
)

func storeFailure(id string) store.Failure { return store.Failure{ID: id, Error: "boom"} }

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
