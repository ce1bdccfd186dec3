// Command netbench is bench/network.sh's server and client: a TCP server that streams zeros to
// whoever connects, and a client that reads from it for a while and prints MB/s.
//
//	netbench serve :80
//	netbench read 127.0.0.1:8080 3s
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "netbench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "serve":
		return serve(args[1])
	case len(args) == 3 && args[0] == "read":
		d, err := time.ParseDuration(args[2])
		if err != nil {
			return err
		}
		return read(args[1], d)
	}
	return fmt.Errorf("usage: netbench serve ADDR | netbench read ADDR DURATION")
}

func serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
}

func read(addr string, d time.Duration) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(d))
	start := time.Now()
	n, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); err != nil && !(ok && ne.Timeout()) {
		return err
	}
	fmt.Printf("%.1f\n", float64(n)/time.Since(start).Seconds()/1e6)
	return nil
}
