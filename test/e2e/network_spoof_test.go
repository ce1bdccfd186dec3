package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestNetworkLoopbackSourceGuard: route_localnet on the bridge must not let a container pass a
// packet off as coming from the host's loopback (a raw socket, CAP_NET_RAW being a default
// capability): a host service that trusts 127.0.0.1 as its peer would believe it. A namespace
// the test plugs into the default bridge sends a UDP datagram from 127.0.0.2 to a host socket
// on the gateway's address, then one from its own address: only the second may arrive. (The
// kernel itself refuses 127.0.0.1, an address of the host's, as a source from outside.)
func TestNetworkLoopbackSourceGuard(t *testing.T) {
	root := t.TempDir()
	netImage(t, root)
	mustKiln(t, root, "run", "--rm", "web", "true") // the default network exists
	var nets []struct{ Bridge, Subnet, Gateway string }
	if err := jsonUnmarshal(mustKiln(t, root, "network", "inspect", "kiln").stdout, &nets); err != nil || len(nets) != 1 {
		t.Fatal("network inspect kiln:", err)
	}
	gw := net.ParseIP(nets[0].Gateway).To4()
	pc, err := net.ListenPacket("udp4", nets[0].Gateway+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port

	prefix := strings.Split(nets[0].Subnet, "/")[1]
	addr := fmt.Sprintf("%d.%d.255.%d", gw[0], gw[1], 150+os.Getpid()%50)
	name := fmt.Sprintf("kiln-e2e-s%d", os.Getpid())
	hv, cv := fmt.Sprintf("ks%dh", os.Getpid()%100000), fmt.Sprintf("ks%dc", os.Getpid()%100000)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "link", "add", hv, "type", "veth", "peer", "name", cv, "netns", name)
	t.Cleanup(func() { exec.Command("ip", "link", "del", hv).Run() })
	run(t, "ip", "link", "set", hv, "master", nets[0].Bridge, "up")
	run(t, "ip", "-n", name, "addr", "add", addr+"/"+prefix, "dev", cv)
	run(t, "ip", "-n", name, "link", "set", cv, "up")

	if err := inNetns("/run/netns/"+name, func() error {
		if err := sendUDP(net.IPv4(127, 0, 0, 2), gw, port, "spoofed"); err != nil {
			return err
		}
		return sendUDP(net.ParseIP(addr).To4(), gw, port, "honest")
	}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second)) // bounds a failure; the honest datagram ends the wait
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("the datagram from %s never arrived: %v", addr, err)
		}
		if msg := string(buf[:n]); msg == "honest" {
			return
		}
		t.Errorf("from the bridge, a datagram claiming to come from %s reached the host: %q", from, buf[:n])
	}
}

// inNetns runs f on a thread in the network namespace at path; the thread is then thrown away.
func inNetns(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		if err != nil {
			errc <- fmt.Errorf("enter %s: %w", path, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// sendUDP sends payload in a UDP datagram built by hand, source address included, on a raw socket.
func sendUDP(src, dst net.IP, port int, payload string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW) // IPPROTO_RAW implies IP_HDRINCL
	if err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	defer unix.Close(fd)
	pkt := make([]byte, 28+len(payload))
	pkt[0], pkt[8], pkt[9] = 0x45, 64, unix.IPPROTO_UDP // IPv4, 20-byte header; TTL; UDP
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	copy(pkt[12:16], src.To4())
	copy(pkt[16:20], dst.To4())
	binary.BigEndian.PutUint16(pkt[20:], 40000)                  // source port
	binary.BigEndian.PutUint16(pkt[22:], uint16(port))           // destination port
	binary.BigEndian.PutUint16(pkt[24:], uint16(8+len(payload))) // UDP length; checksum 0: none
	copy(pkt[28:], payload)
	sa := &unix.SockaddrInet4{}
	copy(sa.Addr[:], dst.To4())
	if err := unix.Sendto(fd, pkt, 0, sa); err != nil {
		return fmt.Errorf("send from %s: %w", src, err)
	}
	return nil
}
