// Package bench measures ccctl's speed and cost on a real etcd and prints one
// table, side by side with plain concurrency.Election (the recipe etcdctl
// elect uses) and with the documented defaults of Kubernetes leader election
// and Patroni.
//
// The driver is a test behind the bench build tag, so that it never runs in
// the normal test run:
//
//	go test -tags bench -run TestReport -v -timeout 60m ./bench
//	go test -tags bench -run TestReport -v ./bench -args -quick
//
// Flags (after -args): -quick (fewer rounds, smaller scale, about a minute
// and a half), -only idle,startup,handover,timed,scale,image (parts to run),
// -scale-ttl 60s,10s (the TTLs of the scale rows, in order), -scale-parts
// one,many (which scale rows), -scale-watch (scale members also keep the
// member watch), -out FILE (also write the table there), -profile DIR (CPU
// profiles of etcd and of the driver during the scale windows), -etcd-dir
// DIR (etcd's data directories there, such as /dev/shm, to tell disk stalls
// from CPU). Each handover of the one-cluster row is logged with the
// campaign transactions it caused, when the first was sent and when the
// first success answered, and etcd's WAL fsyncs and backend commits over
// 64 ms meanwhile.
//
// It starts a 3-member etcd from the etcd executable (Debian's etcd 3.4 in
// CI; see etcdBinaryEnv in the driver) as separate processes, so that their
// CPU time and resident memory can be read from /proc, builds the ccctl
// binary and the stamp helper (bench/stamp) with go build, and drives real
// ccctl processes with real signals. Hooks and services are the stamp helper,
// which appends the CLOCK_MONOTONIC time at which it started to a file; the
// driver reads the same clock before it sends a signal, so latencies are
// differences of one machine-wide clock.
//
// What the figures do not say: they come from one machine whose load is
// whatever else runs on it (the report states the load average); in-process
// rows (concurrency.Election, the scale rows) skip the process start a real
// member pays; the scale rows open members with Register and Campaign only,
// without the member watch a ccctl process also keeps, unless -scale-watch.
package bench
