// Package sys holds nothing itself; its sub-packages are the runtime
// primitives that the public packages (lifecycle, retention, schedule,
// backends/etcd) build on: proc starts child processes and owns every wait
// for them; smallfile reads the files that settings name with a size limit.
package sys
