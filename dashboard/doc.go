// Package dashboard is chronoq's web interface as an http.Handler to mount in any
// server: a JSON API for every view and action (so other languages can enqueue and
// operate queues), and /metrics in Prometheus format.
//
// Security: state-changing requests need a CSRF token (double-submit: the token from
// GET /api/csrf, sent back in the X-CSRF-Token header with its cookie) or are refused;
// credentials (basic auth or a bearer token) are checked on every request when set; a
// read-only handler refuses every action. The chronoq-worker dashboard command binds to
// loopback by default and refuses other addresses without credentials.
package dashboard
