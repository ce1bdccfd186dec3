package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// netImage builds a busybox image with a web server whose CGI script answers with the client's
// address as the server sees it, and the tools to reach it.
func netImage(t *testing.T, root string) {
	t.Helper()
	need(t, "busybox", "curl", "ip", "nft")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: networks need root")
	}
	bb, _ := exec.LookPath("busybox")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "www", "index.html"), "hello from kiln\n", 0o644)
	writeFile(t, filepath.Join(dir, "www", "cgi-bin", "ip"), "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"$REMOTE_ADDR\"\n", 0o755)
	var links strings.Builder
	for _, a := range []string{"sh", "sleep", "cat", "echo", "true", "httpd", "wget", "ping", "ip", "hostname"} {
		links.WriteString("    - {path: /usr/bin/" + a + ", target: busybox}\n")
	}
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: web
contents:
  files:
    - {src: `+bb+`, dst: /usr/bin/busybox, mode: 0755}
    - {src: www/index.html, dst: /www/index.html}
    - {src: www/cgi-bin/ip, dst: /www/cgi-bin/ip, mode: 0755}
  symlinks:
    - {path: /bin, target: usr/bin}
`+links.String()+`config:
  cmd: [httpd, -f, -p, "80", -h, /www]
  ports: ["80/tcp"]
`, 0o644)
	mustKiln(t, root, "build", dir)
}

// hostPort asks `kiln port` where a container port is published and returns the host port.
func hostPort(t *testing.T, root, ctr, port string) string {
	t.Helper()
	addr := strings.TrimSpace(mustKiln(t, root, "port", ctr, port).stdout)
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("kiln port %s %s: %q: %v", ctr, port, addr, err)
	}
	return p
}

// get fetches url with curl, retrying while the server starts, from netns when it is not "".
func get(t *testing.T, netns, url string) string {
	t.Helper()
	args := []string{"curl", "-sS", "--max-time", "5", url}
	if netns != "" {
		args = append([]string{"ip", "netns", "exec", netns}, args...)
	}
	var out []byte
	var err error
	for i := 0; i < 50; i++ {
		if out, err = exec.Command(args[0], args[1:]...).CombinedOutput(); err == nil {
			return string(out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	return ""
}

// clientNetns is a network namespace on the host, linked to it by a veth pair: a client that
// is neither the host nor a container. It returns the namespace, its address and the host's.
func clientNetns(t *testing.T) (name, client, host string) {
	t.Helper()
	name = fmt.Sprintf("kiln-e2e-%d", os.Getpid())
	hv, cv := fmt.Sprintf("ke%dh", os.Getpid()%100000), fmt.Sprintf("ke%dc", os.Getpid()%100000)
	// A /30 unlikely to be routed on a test host; pid-derived so parallel runs differ.
	third := os.Getpid() % 250
	host, client = fmt.Sprintf("10.251.%d.1", third), fmt.Sprintf("10.251.%d.2", third)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "link", "add", hv, "type", "veth", "peer", "name", cv, "netns", name)
	t.Cleanup(func() { exec.Command("ip", "link", "del", hv).Run() })
	run(t, "ip", "addr", "add", host+"/30", "dev", hv)
	run(t, "ip", "link", "set", hv, "up")
	run(t, "ip", "-n", name, "addr", "add", client+"/30", "dev", cv)
	run(t, "ip", "-n", name, "link", "set", cv, "up")
	run(t, "ip", "-n", name, "route", "add", "default", "via", host)
	return name, client, host
}

// TestNetworkPublishedPort: a web server published with -p answers on the host's loopback and
// from another network namespace, where it sees the client's own address; -P publishes the
// image's exposed port; ps, port and inspect show it.
func TestNetworkPublishedPort(t *testing.T) {
	root := t.TempDir()
	netImage(t, root)
	id := strings.TrimSpace(mustKiln(t, root, "run", "-d", "--name", "web", "-p", "80", "web").stdout)
	t.Cleanup(func() { kilnIn(t, root, "rm", "-f", "web") })
	port := hostPort(t, root, "web", "80")
	if got := get(t, "", "http://127.0.0.1:"+port+"/"); got != "hello from kiln\n" {
		t.Errorf("GET 127.0.0.1:%s = %q", port, got)
	}
	ns, client, host := clientNetns(t)
	if got := get(t, ns, "http://"+host+":"+port+"/cgi-bin/ip"); !strings.Contains(got, client) {
		t.Errorf("from netns %s (%s): the server saw %q, want the client's address", ns, client, got)
	}
	if ps := mustKiln(t, root, "ps").stdout; !strings.Contains(ps, "0.0.0.0:"+port+"->80/tcp") {
		t.Errorf("ps shows no 0.0.0.0:%s->80/tcp:\n%s", port, ps)
	}
	var info []struct{ ID, Network, IPAddress string }
	if err := jsonUnmarshal(mustKiln(t, root, "inspect", "web").stdout, &info); err != nil || len(info) != 1 {
		t.Fatalf("inspect web: %v", err)
	}
	if info[0].ID != id || info[0].Network != "kiln" || net.ParseIP(info[0].IPAddress) == nil {
		t.Errorf("inspect web: %+v, want network kiln and an IP", info[0])
	}
	// The container's own address answers too, from the host.
	if got := get(t, "", "http://"+info[0].IPAddress+"/"); got != "hello from kiln\n" {
		t.Errorf("GET %s:80 = %q", info[0].IPAddress, got)
	}

	mustKiln(t, root, "run", "-d", "--name", "all", "-P", "web")
	t.Cleanup(func() { kilnIn(t, root, "rm", "-f", "all") })
	if got := get(t, "", "http://127.0.0.1:"+hostPort(t, root, "all", "80/tcp")+"/"); got != "hello from kiln\n" {
		t.Errorf("-P: GET = %q", got)
	}
}

// TestNetworkByName: two containers on a user network reach each other by name; a container
// sharing another's network namespace reaches its server on 127.0.0.1.
func TestNetworkByName(t *testing.T) {
	root := t.TempDir()
	netImage(t, root)
	netName := fmt.Sprintf("e2e-%d", os.Getpid())
	mustKiln(t, root, "network", "create", netName)
	t.Cleanup(func() { kilnIn(t, root, "network", "rm", netName) })
	mustKiln(t, root, "run", "-d", "--name", "server", "--network", netName, "web")
	t.Cleanup(func() { kilnIn(t, root, "rm", "-f", "server") })
	r := mustKiln(t, root, "run", "--rm", "--name", "client", "--network", netName, "web",
		"sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://server/ && exit 0; sleep 0.2; done; exit 1")
	if r.stdout != "hello from kiln\n" {
		t.Errorf("client got %q from http://server/", r.stdout)
	}
	// The server's /etc/hosts no longer names the client that left.
	hosts := mustKiln(t, root, "exec", "server", "cat", "/etc/hosts").stdout
	if !strings.Contains(hosts, "server") || strings.Contains(hosts, "client") {
		t.Errorf("server's /etc/hosts after the client left:\n%s", hosts)
	}
	r = mustKiln(t, root, "run", "--rm", "--network", "container:server", "web", "wget", "-qO-", "http://127.0.0.1/")
	if r.stdout != "hello from kiln\n" {
		t.Errorf("--network container:server: got %q from 127.0.0.1:80", r.stdout)
	}
	if r := kilnIn(t, root, "network", "rm", netName); r.code == 0 || !strings.Contains(r.stderr, "server") {
		t.Errorf("network rm of a network in use: exit %d, %s", r.code, r.stderr)
	}
}

// TestNetworkEtcFiles: /etc/hostname, /etc/hosts and /etc/resolv.conf for each mode.
func TestNetworkEtcFiles(t *testing.T) {
	root := t.TempDir()
	netImage(t, root)
	r := mustKiln(t, root, "run", "--rm", "--network", "none", "-h", "box", "web", "cat", "/etc/hostname", "/etc/hosts")
	if r.stdout != "box\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tbox\n" {
		t.Errorf("--network none: /etc/hostname and /etc/hosts:\n%s", r.stdout)
	}
	host, _ := os.ReadFile("/etc/resolv.conf")
	if r := mustKiln(t, root, "run", "--rm", "--network", "host", "web", "cat", "/etc/resolv.conf"); r.stdout != string(host) {
		t.Errorf("--network host: /etc/resolv.conf %q, want the host's %q", r.stdout, host)
	}
	r = mustKiln(t, root, "run", "--rm", "web", "cat", "/etc/resolv.conf")
	if !strings.Contains(r.stdout, "nameserver") || strings.Contains(r.stdout, "nameserver 127.") {
		t.Errorf("private: /etc/resolv.conf has no usable nameserver:\n%s", r.stdout)
	}
}

// TestNetworkNoLeaks: after 20 containers with published ports, and one whose monitor was
// killed with -9, none of their veths, nftables rules, addresses, cgroups or mounts is left.
func TestNetworkNoLeaks(t *testing.T) {
	root := t.TempDir()
	netImage(t, root)
	var ids []string
	for i := 0; i < 20; i++ {
		ids = append(ids, strings.TrimSpace(mustKiln(t, root, "run", "-d", "--rm", "-p", "80", "web", "true").stdout))
	}
	id := strings.TrimSpace(mustKiln(t, root, "run", "-d", "-p", "80", "web").stdout)
	ids = append(ids, id)
	var st []struct{ MonitorPid int }
	if err := jsonUnmarshal(mustKiln(t, root, "inspect", id).stdout, &st); err != nil || len(st) != 1 {
		t.Fatal("inspect:", err)
	}
	if err := syscallKill(st[0].MonitorPid, 9); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ { // --rm containers remove themselves; the killed one is swept by ps
		if ps := mustKiln(t, root, "ps", "-a", "--format", "json").stdout; strings.Count(ps, `"ID"`) <= 1 && strings.Contains(ps, `"exited"`) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustKiln(t, root, "ps", "-a") // the sweep, once the record says exited
	if rules := run(t, "nft", "list", "ruleset"); strings.Contains(rules, id) {
		t.Errorf("kill -9 of the monitor of %s: its DNAT rules outlived the next kiln ps", id[:12])
	}
	mustKiln(t, root, "rm", id)
	// The kernel deletes a veth with its namespace, in its own time: wait for that.
	var links string
	for i := 0; i < 100; i++ {
		if links = run(t, "ip", "-o", "link"); !strings.Contains(links, "kv") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	rules := run(t, "nft", "list", "ruleset")
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	records, _ := filepath.Glob("/run/kiln/networks/*.json")
	var endpoints strings.Builder
	for _, f := range records {
		b, _ := os.ReadFile(f)
		endpoints.Write(b)
	}
	for _, id := range ids {
		if strings.Contains(links, "kv"+id[:12]) {
			t.Errorf("container %s: veth kv%s left", id[:12], id[:12])
		}
		if strings.Contains(rules, id) {
			t.Errorf("container %s: nftables rules left", id[:12])
		}
		if strings.Contains(endpoints.String(), id) {
			t.Errorf("container %s: still has an address on a network", id[:12])
		}
		if cgs, _ := filepath.Glob("/sys/fs/cgroup/*/kiln/" + id); len(cgs) > 0 {
			t.Errorf("container %s: cgroups left: %v", id[:12], cgs)
		}
	}
	if strings.Contains(string(mounts), root) {
		t.Errorf("mounts under %s left", root)
	}
}

// TestNetworkBadInput: a taken port, an overlapping subnet, an unknown network: a clear error
// and nothing set up.
func TestNetworkBadInput(t *testing.T) {
	root := t.TempDir()
	netImage(t, root)
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, taken, _ := net.SplitHostPort(ln.Addr().String())
	netName := fmt.Sprintf("e2e-bad-%d", os.Getpid())
	mustKiln(t, root, "network", "create", netName)
	t.Cleanup(func() { kilnIn(t, root, "network", "rm", netName) })
	var nets []struct{ Subnet string }
	if err := jsonUnmarshal(mustKiln(t, root, "network", "inspect", netName).stdout, &nets); err != nil || len(nets) != 1 {
		t.Fatal("network inspect:", err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--rm", "-p", taken + ":80", "web", "true"}, "port 0.0.0.0:" + taken + "/tcp is already in use"},
		{[]string{"run", "--rm", "--network", "no-such-net", "web", "true"}, "no such network: no-such-net"},
		{[]string{"run", "--rm", "-p", "80:99999", "web", "true"}, "-p 80:99999: container port"},
		{[]string{"run", "--rm", "--network", "none", "-p", "80", "web", "true"}, "-p/-P: --network none"},
		{[]string{"network", "create", "--subnet", nets[0].Subnet, netName + "-2"}, "overlaps network " + netName},
	} {
		r := kilnIn(t, root, c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("kiln %s: exit %d, stderr %q, want %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}
	if ps := mustKiln(t, root, "ps", "-a", "--format", "json").stdout; strings.TrimSpace(ps) != "[]" {
		t.Errorf("failed runs left containers: %s", ps)
	}
	records, _ := filepath.Glob("/run/kiln/networks/*.json")
	for _, f := range records {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), root) {
			t.Errorf("%s holds an address for a container of this test's root:\n%s", f, b)
		}
	}
	// A port another container publishes.
	mustKiln(t, root, "run", "-d", "--name", "first", "-p", "80", "web")
	t.Cleanup(func() { kilnIn(t, root, "rm", "-f", "first") })
	published := hostPort(t, root, "first", "80")
	r := kilnIn(t, root, "run", "--rm", "-p", published+":80", "web", "true")
	if want := "port 0.0.0.0:" + published + "/tcp: already published by a container"; r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("a port another container publishes: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	if ps := mustKiln(t, root, "ps", "-a", "--format", "json").stdout; strings.Count(ps, `"ID"`) != 1 {
		t.Errorf("the refused run left a container: %s", ps)
	}
	if out := mustKiln(t, root, "network", "ls").stdout; strings.Contains(out, netName+"-2") {
		t.Errorf("a refused network was recorded:\n%s", out)
	}
}

// TestNetworkLoopbackGuard: route_localnet on the bridge (for 127.0.0.1:PORT) must not let what
// is on the bridge reach the host's loopback-only services. A namespace the test plugs into the
// default bridge, sending 127.0.0.0/8 to the gateway, cannot connect to a server on the host's
// 127.0.0.1.
func TestNetworkLoopbackGuard(t *testing.T) {
	root := t.TempDir()
	netImage(t, root)
	n := defaultNetwork(t, root)
	secret := serve(t, "127.0.0.1:0", "host-only secret\n")
	open := serve(t, n.Gateway+":0", "open\n")
	name, cv, _ := plugIntoBridge(t, n, "g", 200)
	// Send 127.0.0.0/8 to the gateway, as a frame crafted on a raw socket (CAP_NET_RAW, one of
	// the default capabilities) would: lo stays down, so no local route is in the way.
	run(t, "ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1", "net.ipv4.conf."+cv+".route_localnet=1")
	run(t, "ip", "-n", name, "route", "add", "127.0.0.0/8", "via", n.Gateway)
	// The host answers on the gateway's address...
	if got := get(t, name, "telnet://"+open); got != "open\n" {
		t.Fatalf("from the bridge, %s answered %q", open, got)
	}
	// ...and not on its loopback.
	out, err := exec.Command("ip", "netns", "exec", name, "curl", "-sS", "--max-time", "2", "telnet://"+secret).CombinedOutput()
	if err == nil || strings.Contains(string(out), "secret") {
		t.Errorf("from the bridge, %s on the host answered: %s", secret, out)
	}
}

// serve answers every connection to addr with msg, until the test ends; it returns the address.
func serve(t *testing.T, addr, msg string) string {
	t.Helper()
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(msg))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// TestNetworkIsolation: a container on one user network cannot reach a container on another by
// its address (Docker's isolation between bridge networks), but still reaches a port that
// container publishes on the host, as any client can, and so does the container itself.
func TestNetworkIsolation(t *testing.T) {
	root := t.TempDir()
	netImage(t, root)
	a, b := fmt.Sprintf("e2e-iso-a-%d", os.Getpid()), fmt.Sprintf("e2e-iso-b-%d", os.Getpid())
	for _, n := range []string{a, b} {
		mustKiln(t, root, "network", "create", n)
		t.Cleanup(func() { kilnIn(t, root, "network", "rm", n) })
	}
	mustKiln(t, root, "run", "-d", "--name", "server", "--network", b, "-p", "80", "web")
	t.Cleanup(func() { kilnIn(t, root, "rm", "-f", "server") })
	var info []struct{ IPAddress string }
	if err := jsonUnmarshal(mustKiln(t, root, "inspect", "server").stdout, &info); err != nil || len(info) != 1 {
		t.Fatal("inspect server:", err)
	}
	port := hostPort(t, root, "server", "80")
	var nets []struct{ Gateway string }
	if err := jsonUnmarshal(mustKiln(t, root, "network", "inspect", a).stdout, &nets); err != nil || len(nets) != 1 {
		t.Fatal("network inspect:", err)
	}
	// The server answers on its own network (so a refusal below is the isolation's).
	wget := "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://%s/ && exit 0; sleep 0.2; done; exit 1"
	if r := mustKiln(t, root, "run", "--rm", "--network", b, "web", "sh", "-c", fmt.Sprintf(wget, info[0].IPAddress)); r.stdout != "hello from kiln\n" {
		t.Fatalf("from network %s, http://%s/ = %q", b, info[0].IPAddress, r.stdout)
	}
	r := kilnIn(t, root, "run", "--rm", "--network", a, "web", "sh", "-c", "busybox timeout 3 wget -qO- http://"+info[0].IPAddress+"/ || exit 1") // sh stays PID 1: a signal reaches wget
	if r.code == 0 || strings.Contains(r.stdout, "hello") {
		t.Errorf("from network %s, a container on %s answered at %s: %q", a, b, info[0].IPAddress, r.stdout)
	}
	r = mustKiln(t, root, "run", "--rm", "--network", a, "web", "sh", "-c", fmt.Sprintf(wget, nets[0].Gateway+":"+port))
	if r.stdout != "hello from kiln\n" {
		t.Errorf("from network %s, the port published at %s:%s = %q", a, nets[0].Gateway, port, r.stdout)
	}
	// Hairpin: the server reaches its own published port through the host.
	if err := jsonUnmarshal(mustKiln(t, root, "network", "inspect", b).stdout, &nets); err != nil || len(nets) != 1 {
		t.Fatal("network inspect:", err)
	}
	if r := mustKiln(t, root, "exec", "server", "wget", "-qO-", "http://"+nets[0].Gateway+":"+port+"/"); r.stdout != "hello from kiln\n" {
		t.Errorf("hairpin: the server, at its own published port %s:%s, got %q", nets[0].Gateway, port, r.stdout)
	}
}

// TestNetworkLoopbackPublishFromOutside: a port published on 127.0.0.1 answers the host's own
// connections only; a neighbour sending to 127.0.0.1 through the host (a crafted frame: its
// own loopback down, route_localnet on) does not reach the container.
func TestNetworkLoopbackPublishFromOutside(t *testing.T) {
	root := t.TempDir()
	netImage(t, root)
	mustKiln(t, root, "run", "-d", "--name", "local", "-p", "127.0.0.1::80", "web")
	t.Cleanup(func() { kilnIn(t, root, "rm", "-f", "local") })
	addr := strings.TrimSpace(mustKiln(t, root, "port", "local", "80").stdout)
	if got := get(t, "", "http://"+addr+"/"); got != "hello from kiln\n" {
		t.Fatalf("from the host, GET %s = %q", addr, got)
	}
	ns, _, host := clientNetns(t)
	_, cv := fmt.Sprintf("ke%dh", os.Getpid()%100000), fmt.Sprintf("ke%dc", os.Getpid()%100000)
	run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1", "net.ipv4.conf."+cv+".route_localnet=1")
	run(t, "ip", "-n", ns, "route", "add", "127.0.0.0/8", "via", host)
	out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "2", "http://"+addr+"/").CombinedOutput()
	if err == nil || strings.Contains(string(out), "hello") {
		t.Errorf("from a neighbour, %s (published on the host's loopback only) answered: %s", addr, out)
	}
}

// TestNetworkSubnetOverlapsHostAddress: a subnet holding one of the host's own addresses is
// refused even when no route covers it (a /32 address, as on a cloud VM's NIC), naming it.
func TestNetworkSubnetOverlapsHostAddress(t *testing.T) {
	root := t.TempDir()
	netImage(t, root)
	link := fmt.Sprintf("kd%d", os.Getpid()%100000)
	addr := fmt.Sprintf("10.252.%d.7", os.Getpid()%250)
	run(t, "ip", "link", "add", link, "type", "veth", "peer", "name", link+"p") // no dummy module needed
	t.Cleanup(func() { exec.Command("ip", "link", "del", link).Run() })
	run(t, "ip", "addr", "add", addr+"/32", "dev", link)
	subnet := strings.TrimSuffix(addr, ".7") + ".0/24"
	name := fmt.Sprintf("e2e-host-addr-%d", os.Getpid())
	r := kilnIn(t, root, "network", "create", "--subnet", subnet, name)
	if r.code == 0 {
		kilnIn(t, root, "network", "rm", name)
	}
	if want := "--subnet " + subnet + ": overlaps the host's route to " + addr + "/32 (dev " + link + ")"; r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("network create --subnet %s beside the host's %s: exit %d, stderr %q, want %q", subnet, addr, r.code, r.stderr, want)
	}
}

// TestNetworkNoIPv6OnBridge: networks are IPv4 only, so neither the bridge nor a container's
// eth0 has IPv6 on; with it, a router advertisement crafted in one container (CAP_NET_RAW)
// would make it the IPv6 router of the host and of its neighbours (CVE-2020-13401).
func TestNetworkNoIPv6OnBridge(t *testing.T) {
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		t.Skip("SKIP: this kernel has no IPv6:", err)
	}
	root := t.TempDir()
	netImage(t, root)
	r := mustKiln(t, root, "run", "--rm", "web", "sh", "-c", "cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6 /proc/net/if_inet6")
	if lines := strings.Split(r.stdout, "\n"); lines[0] != "1" || strings.Contains(r.stdout, "eth0") {
		t.Errorf("the container's eth0: disable_ipv6, then its IPv6 addresses:\n%s", r.stdout)
	}
	var nets []struct{ Bridge string }
	if err := jsonUnmarshal(mustKiln(t, root, "network", "inspect", "kiln").stdout, &nets); err != nil || len(nets) != 1 {
		t.Fatal("network inspect kiln:", err)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv6/conf/" + nets[0].Bridge + "/disable_ipv6"); string(b) != "1\n" {
		t.Errorf("bridge %s: disable_ipv6 is %q, want 1", nets[0].Bridge, b)
	}
}

// bridgeNetwork is what `kiln network inspect` says of a network.
type bridgeNetwork struct{ Bridge, Subnet, Gateway string }

// defaultNetwork is the record of the default network, which a first container makes.
func defaultNetwork(t *testing.T, root string) bridgeNetwork {
	t.Helper()
	mustKiln(t, root, "run", "--rm", "web", "true") // the default network exists
	var nets []bridgeNetwork
	if err := jsonUnmarshal(mustKiln(t, root, "network", "inspect", "kiln").stdout, &nets); err != nil || len(nets) != 1 {
		t.Fatal("network inspect kiln:", err)
	}
	return nets[0]
}

// plugIntoBridge makes a network namespace with a veth on n's bridge, at an address near the top
// of the subnet (which allocation reaches last: base+pid%50 in x.y.255.0), and returns the
// namespace's name, its end of the veth and its address. Both go when the test ends.
func plugIntoBridge(t *testing.T, n bridgeNetwork, tag string, base int) (name, cv, addr string) {
	t.Helper()
	prefix := strings.Split(n.Subnet, "/")[1]
	gw := net.ParseIP(n.Gateway).To4()
	addr = fmt.Sprintf("%d.%d.255.%d", gw[0], gw[1], base+os.Getpid()%50)
	name = fmt.Sprintf("kiln-e2e-%s%d", tag, os.Getpid())
	hv := fmt.Sprintf("k%s%dh", tag, os.Getpid()%100000)
	cv = fmt.Sprintf("k%s%dc", tag, os.Getpid()%100000)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "link", "add", hv, "type", "veth", "peer", "name", cv, "netns", name)
	t.Cleanup(func() { exec.Command("ip", "link", "del", hv).Run() })
	run(t, "ip", "link", "set", hv, "master", n.Bridge, "up")
	run(t, "ip", "-n", name, "addr", "add", addr+"/"+prefix, "dev", cv)
	run(t, "ip", "-n", name, "link", "set", cv, "up")
	return name, cv, addr
}
