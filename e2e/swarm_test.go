//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stackName names the swarm stack of TestSwarmStack.
const stackName = "ccctl-e2e"

// swarmStack is the compose file of the stack: a 3-member etcd cluster (one
// service per member) and the demo service with 3 replicas. Swarm names
// each replica's container (and host name, the member id) itself.
const swarmStack = `version: "3.8"
x-etcd: &etcd
  image: ` + imageEtcd + `
  labels: {` + label + `: "1"}
  deploy:
    endpoint_mode: dnsrr
    restart_policy: {condition: none}
services:
%s
  demo:
    image: ` + imageDemo + `
    labels: {` + label + `: "1"}
    environment:
      ETCD_ENDPOINTS: http://etcd1:2379,http://etcd2:2379,http://etcd3:2379
      ENVIRONMENT: e2e
      SERVICE: swarm
      CCCTL_TTL: %s
      CCCTL_GRACE_PERIOD: 5s
      PORTS_WHEN_ACTIVE: "8080"
    volumes:
      - {type: bind, source: %s, target: /timeline}
      - {type: tmpfs, target: /tmp}
    stop_grace_period: 10s
    deploy:
      replicas: 3
      endpoint_mode: dnsrr
      restart_policy: {condition: any, delay: 1s}
`

func etcdServices() string {
	var b strings.Builder
	var initial []string
	for i := 1; i <= 3; i++ {
		initial = append(initial, fmt.Sprintf("etcd%d=http://etcd%d:2380", i, i))
	}
	for i := 1; i <= 3; i++ {
		n := fmt.Sprintf("etcd%d", i)
		fmt.Fprintf(&b, "  %s:\n    <<: *etcd\n    hostname: %s\n    command: [--name, %s, --data-dir, /data/%s, "+
			"--listen-client-urls, \"http://0.0.0.0:2379\", --advertise-client-urls, \"http://%s:2379\", "+
			"--listen-peer-urls, \"http://0.0.0.0:2380\", --initial-advertise-peer-urls, \"http://%s:2380\", "+
			"--initial-cluster, \"%s\", --initial-cluster-state, new, --initial-cluster-token, ccctl-e2e-swarm]\n",
			n, n, n, n, n, n, strings.Join(initial, ","))
	}
	return b.String()
}

// swarmState returns the engine's swarm state: inactive, active, ...
func swarmState() (string, error) {
	return docker("info", "--format", "{{.Swarm.LocalNodeState}}")
}

// joinSwarm makes this engine a single-node swarm for the test and leaves
// it at cleanup. It skips when the engine is in a swarm the tests did not
// make, and leaves a swarm an earlier crashed run made (its node carries the
// label).
func joinSwarm(t *testing.T) {
	t.Helper()
	state, err := swarmState()
	if err != nil {
		t.Fatal(err)
	}
	if state == "active" {
		mine, _ := docker("node", "inspect", "self", "--format", `{{index .Spec.Labels "`+label+`"}}`)
		if mine != "1" {
			t.Skip("this engine is already in a swarm the tests did not make; not touching it")
		}
		leaveSwarm(t)
	}
	if out, err := docker("swarm", "init"); err != nil {
		t.Skipf("docker swarm init does not work here: %v %s", err, out)
	}
	t.Cleanup(func() { leaveSwarm(t) })
	node := mustDocker(t, "info", "--format", "{{.Swarm.NodeID}}")
	mustDocker(t, "node", "update", "--label-add", label+"=1", node)
}

// leaveSwarm removes the stack, waits until its containers are gone and
// leaves the swarm.
func leaveSwarm(t *testing.T) {
	t.Helper()
	docker("stack", "rm", stackName)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ids, err := docker("ps", "-aq", "--filter", "label=com.docker.stack.namespace="+stackName)
		if err == nil && ids == "" {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
	if _, err := docker("swarm", "leave", "--force"); err != nil {
		t.Errorf("leave the swarm: %v", err)
	}
	// Stack containers that outlived the swarm.
	if ids, _ := docker("ps", "-aq", "--filter", "label=com.docker.stack.namespace="+stackName); ids != "" {
		docker(append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
	}
}

// stackContainer returns the running container of the demo service whose
// member id (its host name: the short container id) is member.
func stackContainer(t *testing.T, member string) string {
	t.Helper()
	ids := mustDocker(t, "ps", "-q", "--no-trunc", "--filter", "label=com.docker.swarm.service.name="+stackName+"_demo")
	for _, id := range strings.Fields(ids) {
		if strings.HasPrefix(id, member) {
			return id
		}
	}
	t.Fatalf("no running container of member %s in %q", member, ids)
	return ""
}

// TestSwarmStack runs drills 1 to 3 on a docker stack deploy of etcd and the
// demo service on a single-node swarm: replicas started by swarm at once,
// docker stop of the master, docker kill of the next master.
func TestSwarmStack(t *testing.T) {
	d := newDrill(t, "swarm")
	joinSwarm(t)
	stackFile := filepath.Join(t.TempDir(), "stack.yaml")
	if err := os.WriteFile(stackFile, []byte(fmt.Sprintf(swarmStack, etcdServices(), ttl, d.dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	mustDocker(t, "stack", "deploy", "--resolve-image", "never", "-c", stackFile, stackName)

	// Drill 1: swarm starts the replicas (and etcd) in any order.
	ms := d.waitFor("3 replicas' services started", 90*time.Second, func(ms []mark) bool {
		return len(filter(ms, "", evServiceStarted)) >= 3
	})
	var members []string
	for _, m := range filter(ms, "", evServiceStarted) {
		members = append(members, m.Member)
	}
	master := checkInitBeforeService(t, ms, members)
	t.Logf("swarm drill 1: %s is master of %v; all 3 services started %v after docker stack deploy", master, members, ms[len(ms)-1].At.Sub(t0).Round(time.Millisecond))
	token := filter(ms, master, evStartedMaster)[0].Token

	// Drill 2: docker stop of the master.
	t1 := time.Now()
	mustDocker(t, "stop", "-t", "10", stackContainer(t, master))
	p, _ := waitPromotion(d, t1, 10*time.Second)
	took := p.At.Sub(t1)
	t.Logf("swarm drill 2 (docker stop %s): %s's transition_slave_to_master began %v after docker stop", master, p.Member, took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("transition_slave_to_master began %v after docker stop; want within 1s", took)
	}
	if p.Member == master || p.Token <= token {
		t.Errorf("promoted: got %s with token %d; want another member than %s with a token > %d", p.Member, p.Token, master, token)
	}

	// Drill 3: docker kill of the new master.
	master, token = p.Member, p.Token
	d.waitFor("the new master's first accepted write", 10*time.Second, func(ms []mark) bool {
		return len(filter(ms, master, evWriteOK)) > 0
	})
	t2 := time.Now()
	mustDocker(t, "kill", stackContainer(t, master))
	p, ms = waitPromotion(d, t2, ttl+15*time.Second)
	took = p.At.Sub(t2)
	t.Logf("swarm drill 3 (docker kill %s, TTL %v): %s's transition_slave_to_master began %v after docker kill", master, ttl, p.Member, took.Round(time.Millisecond))
	if took > ttl+time.Second {
		t.Errorf("transition_slave_to_master began %v after docker kill; want within TTL+1s = %v", took, ttl+time.Second)
	}
	if p.Member == master || p.Token <= token {
		t.Errorf("promoted: got %s with token %d; want another member than %s with a token > %d", p.Member, p.Token, master, token)
	}
	if n := len(filter(after(ms, t2), "", evSlaveToMaster)); n != 1 {
		t.Errorf("got %d transition_slave_to_master after the kill; want 1", n)
	}
}
