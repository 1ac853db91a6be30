// Package redistest starts a real redis-server on a free loopback port for a test
// package, and hands each test a client on a freshly flushed database.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
//
// and in a test:
//
//	rdb := redistest.Client(t)
package redistest
