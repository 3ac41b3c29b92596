// Package model holds a model of the etcd backend's election in Promela
// (election.pml) and the test that checks it with spin: three members,
// crashes, freezes, cut-offs, lease expiry on the server, the handover in
// the resigning leader's transaction, switchover, pause and keys written by
// hand. The model leaves every decision of who tries and when free, so
// what it shows is that the transactions' conditions and the session's
// local deadline alone keep the invariants listed in election.pml: at most
// one key under election/, every leader key bound to a live lease, at most
// one member acting as master, only before its deadline while its lease
// lives, and tokens that strictly increase. Each invariant's keeper in the
// Go code is named in backends/etcd's package documentation.
//
// The model is checked exhaustively within a horizon of time and of etcd
// revisions, one fault set per run (all of them at once are out of reach
// of one run on a small machine); planted bugs, each removing one condition,
// must make it fail. It has no Go code: the package exists for its test.
package model
