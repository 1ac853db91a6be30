// Package dashboard is chronoq's web interface as an http.Handler to mount in any
// server: a JSON API for every view and action (so other languages can enqueue and
// operate queues), and /metrics in Prometheus format.
//
// Security: state-changing requests need a CSRF token (double-submit: the token from
// GET /api/csrf, sent back in the X-CSRF-Token header with its cookie) or are refused,
// and so are those a browser sends from another origin (Sec-Fetch-Site, or Origin
// against Host); credentials (basic auth or a bearer token) are checked on every
// request when set; without them, only a loopback Host (localhost, 127.0.0.1, [::1])
// or one in Config.AllowedHosts is served, against DNS rebinding; a read-only handler
// refuses every action. The chronoq-worker dashboard command binds to loopback by
// default and refuses other addresses without credentials.
package dashboard
