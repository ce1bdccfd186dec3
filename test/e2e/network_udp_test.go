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

// udpEcho is a container's UDP server: it answers each datagram with "echo: " and the datagram.
const udpEcho = `package main

import "net"

func main() {
	c, err := net.ListenPacket("udp4", ":5353")
	if err != nil {
		panic(err)
	}
	buf := make([]byte, 512)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			panic(err)
		}
		c.WriteTo(append([]byte("echo: "), buf[:n]...), from)
	}
}
`

// TestNetworkUDPPublishBeforeStart: a UDP client that was already sending to a host port
// before a container published it (its datagrams refused, but its conntrack entry, without NAT,
// kept alive by every new one) reaches the container once it is published, as netavark
// ensures by deleting such entries; without that the flow would never be DNATed.
func TestNetworkUDPPublishBeforeStart(t *testing.T) {
	root := t.TempDir()
	netImage(t, root)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "src", "go.mod"), "module udpecho\n\ngo 1.22\n", 0o644)
	writeFile(t, filepath.Join(dir, "src", "main.go"), udpEcho, 0o644)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "udpecho"), ".")
	build.Dir, build.Env = filepath.Join(dir, "src"), append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the UDP server: %v\n%s", err, out)
	}
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: udpecho
contents:
  files:
    - {src: udpecho, dst: /udpecho, mode: 0755}
config:
  cmd: [/udpecho]
`, 0o644)
	mustKiln(t, root, "build", dir)

	probe, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	client, err := net.ListenPacket("udp4", "127.0.0.1:0") // one source port: one conntrack entry
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	if _, err := client.WriteTo([]byte("early"), dst); err != nil { // nothing listens: refused, tracked
		t.Fatal(err)
	}

	mustKiln(t, root, "run", "-d", "--name", "udp", "-p", fmt.Sprintf("127.0.0.1:%d:5353/udp", port), "udpecho")
	t.Cleanup(func() { kilnIn(t, root, "rm", "-f", "udp") })
	buf := make([]byte, 512)
	for i := 0; i < 50; i++ { // the client keeps sending from its port while the server starts
		if _, err := client.WriteTo(fmt.Appendf(nil, "hello %d", i), dst); err != nil {
			t.Fatal(err)
		}
		client.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err := client.ReadFrom(buf); err == nil {
			if got := string(buf[:n]); !strings.HasPrefix(got, "echo: hello") {
				t.Fatalf("from 127.0.0.1:%d/udp: %q", port, got)
			}
			return
		}
	}
	t.Errorf("a client that sent to 127.0.0.1:%d/udp before it was published never reached the container", port)
}
