// Package e2e holds the end-to-end drills of ccctl in real containers. Its
// tests are behind the build tag e2e:
//
//	go test -tags e2e -short ./e2e/...
//
// They build a static ccctl (CGO_ENABLED=0), the ccctl image from the
// repository's Dockerfile, a demo image (ccctl as entrypoint, Debian's static
// busybox for shell hooks, the helper in e2e/demo as service) and an etcd
// image (Debian's etcd with its libc, on an empty base: no registry is
// needed), then start a 3-member etcd cluster and 3 replicas of the demo
// service on a private docker network and run the failure drills: start-up
// order, docker stop, docker kill, a network cut of the master and one of a
// slave (each for 3 x TTL: the container and its service's pid are the same
// afterwards, and the member rejoins as a slave), docker pause, a rolling
// restart and one etcd member down. Each hook appends a line to a timeline
// file shared by every replica through a volume; each drill asserts on that
// timeline and logs its measured times.
//
// The tests skip with a message when no Docker engine is reachable, and fail
// instead when CCCTL_E2E_DOCKER=1. Everything they create carries the label
// io.ccctl.e2e and is removed at the end (images too, unless
// CCCTL_E2E_KEEP_IMAGES=1), and the leftover containers and networks of a
// crashed run are removed at the start. Static busybox is taken from CCCTL_E2E_BUSYBOX,
// from the host when it is installed (Debian's busybox-static), or
// downloaded with apt-get download. The etcd binary is CCCTL_ETCD_BINARY or
// etcd on PATH (Debian's etcd-server).
package e2e
