// Command ccctl is the cluster controller for containers: the entrypoint that
// supervises a service, registers it in etcd and elects one master per
// service (ccctl run), and the operator's tool to inspect and steer a
// cluster (status, leader, switchover, pause, resume, health, backup).
//
// Configuration comes from flags, environment variables (the original
// docker-cluster-controller's names keep working), an optional YAML file and
// defaults, in that order; see the configuration reference in README.md.
// Exit codes of ccctl run: the service's own code, 128+N when it died of
// signal N, 2 for bad configuration, 3 when the backend could not be reached
// in time, 4 when an init hook failed, 5 when leadership was lost and the
// configured action is exit. The other commands exit 0 on success, 1 on
// failure and 2 on bad usage or configuration.
package main

import "os"

func main() {
	os.Exit(Execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
