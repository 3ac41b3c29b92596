// Package model holds a model of the etcd backend's election in Promela
// (election.pml) and the test that checks it with spin: three members,
// crashes, freezes, cut-offs, lease expiry on the server, the handover in
// the resigning leader's transaction (to the heir, or to the best
// candidate of the ranking), the pass of the heir's place, switchover,
// pause and keys written by hand. The model leaves every decision of who
// tries and when free, so
// what it shows is that the transactions' conditions and the session's
// local deadline alone keep the invariants listed in election.pml: at most
// one key under election/, every leader key bound to a live lease, at most
// one member acting as master, only before its deadline while its lease
// lives, and tokens that strictly increase. Each invariant's keeper in the
// Go code is named in the Safety list beside decide (backends/etcd,
// decide.go).
//
// The steps of a member in election.pml and the Go code they stand for
// (backends/etcd):
//
//	open a session, revoke        openSession (Grant), Reopen (Revoke)
//	a renewal                     session.keepAlive, session.extend
//	the local timer               session.onDeadline, session.lose
//	claim the heir's place        claimHeir, when decide says actClaim
//	pass the heir's place         passHeir, when decide says actPass (the
//	                              holder ranked another member best)
//	the campaign's transaction    tryLead, when decide says actLead
//	a handed-over term            decide's actAdopt (never the term in
//	                              self.ended), then won
//	a term taken up in time       won (refuses once the session ended)
//	the leader's monitor          leadership.monitor
//	resign, then the release      Resign (detach), then release: to the
//	                              heir, or to any other live member (the
//	                              best candidate of a ranking)
//
// Who may take each step, and when, is decide's and the pacer's choice
// (pacing.go); the model leaves it free.
//
// The model is checked exhaustively within a horizon of time and of etcd
// revisions, one fault set per run (all of them at once are out of reach
// of one run on a small machine); planted bugs, each removing one condition,
// must make it fail. It has no Go code: the package exists for its test.
package model
