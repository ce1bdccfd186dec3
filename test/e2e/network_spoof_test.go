package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
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
	n := defaultNetwork(t, root)
	gw := net.ParseIP(n.Gateway).To4()
	pc, err := net.ListenPacket("udp4", n.Gateway+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	name, _, addr := plugIntoBridge(t, n, "s", 150)

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
