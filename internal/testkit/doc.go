// Package testkit holds nothing itself; its sub-packages serve the tests
// and benchmarks only: etcdtest starts real etcd servers, testutil polls
// with a deadline and keeps buffers safe for concurrent use, docstest runs
// the documentation's commands as written.
package testkit
