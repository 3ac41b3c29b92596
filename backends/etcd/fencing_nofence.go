//go:build ccctl_nofence

package etcd

// selfFencing is false in builds with the tag ccctl_nofence: a planted bug
// for the chaos tests in e2e/chaos. The deadline timer then never gives the
// session up, so a master cut off from etcd keeps acting as master. Never
// use this tag in a build that is shipped.
const selfFencing = false
