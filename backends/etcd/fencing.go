//go:build !ccctl_nofence

package etcd

// selfFencing is true in every real build: the session's deadline timer
// gives the session up (see the package comment). The build tag
// ccctl_nofence, used only by the chaos tests in e2e/chaos to show that
// their checker catches a master that does not fence itself, turns it off.
const selfFencing = true
