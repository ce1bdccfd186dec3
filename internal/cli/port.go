package cli

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/container"
)

func newPort(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PORT[/tcp|udp]]",
		Short: "List a container's published ports",
		Long: `List the ports a running container publishes, one "80/tcp -> 0.0.0.0:8080" line each, as
Docker does; with PORT, only where that container port is published ("0.0.0.0:8080").`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, s, err := runningContainer(e, args[0])
			if err != nil {
				return err
			}
			if len(args) == 1 {
				for _, p := range s.Ports {
					fmt.Fprintf(e.stdout, "%d/%s -> %s\n", p.ContainerPort, p.Protocol, hostAddr(p))
				}
				return nil
			}
			return printPort(e, s, args[0], args[1])
		},
	}
}

func printPort(e *env, s *container.State, ref, want string) error {
	num, proto, _ := strings.Cut(want, "/")
	if proto == "" {
		proto = "tcp"
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil {
		return fmt.Errorf("port %s: want PORT[/tcp|udp]", want)
	}
	found := false
	for _, p := range s.Ports {
		if uint64(p.ContainerPort) == n && p.Protocol == proto {
			fmt.Fprintln(e.stdout, hostAddr(p))
			found = true
		}
	}
	if !found {
		return fmt.Errorf("no public port %d/%s published for %s", n, proto, ref)
	}
	return nil
}

// hostAddr is where a published port listens: "0.0.0.0:8080".
func hostAddr(p container.Port) string {
	ip := p.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort)))
}
