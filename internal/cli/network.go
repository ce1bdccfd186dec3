package cli

import (
	"errors"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/network"
)

func newNetwork(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Manage container networks",
		Long: `Networks are Linux bridges on the host with a subnet each; containers on one reach each other by
name (kiln keeps every member's /etc/hosts current) and the outside through IPv4 masquerade,
but not another network's containers (only the ports those publish on the host). The default network, "kiln" (what --network private means), is created on first use; create
it yourself first to choose its subnet: kiln network create --subnet 10.123.0.0/24 kiln.`,
	}
	cmd.AddCommand(newNetworkCreate(e), newNetworkLs(e), newNetworkRm(e), newNetworkInspect(e))
	return cmd
}

func openNetworks(e *env) (*network.Store, error) {
	sweepNetworks()
	return network.Open(network.HostDir)
}

func newNetworkCreate(e *env) *cobra.Command {
	var subnet string
	var mtu int
	cmd := &cobra.Command{
		Use:   "create [--subnet CIDR] [--mtu N] NAME",
		Short: "Create a network",
		Long: `Create a network: a bridge (kiln0, kiln1, ...) with the subnet's first address, and masquerade
for its outbound traffic. Without --subnet, the first free /16 from 10.88.0.0 on; a subnet that
overlaps another network or one of the host's routes is refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			nets, err := openNetworks(e)
			if err != nil {
				return err
			}
			n, err := nets.Create(args[0], subnet, mtu)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, n.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&subnet, "subnet", "", "the network's IPv4 subnet, e.g. 10.90.0.0/24")
	cmd.Flags().IntVar(&mtu, "mtu", 0, "MTU of the bridge and the containers' interfaces (default 65535, the loopback's)")
	return cmd
}

func newNetworkLs(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			nets, err := openNetworks(e)
			if err != nil {
				return err
			}
			all, err := nets.List()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tBRIDGE\tSUBNET\tGATEWAY\tCONTAINERS")
			for _, n := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", n.Name, n.Bridge, n.Subnet, n.Gateway, len(n.Endpoints))
			}
			return tw.Flush()
		},
	}
}

func newNetworkRm(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK...",
		Aliases: []string{"remove"},
		Short:   "Remove networks that no container uses",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			nets, err := openNetworks(e)
			if err != nil {
				return err
			}
			for _, name := range args {
				if err := nets.Remove(name); err != nil {
					if errors.Is(err, network.ErrInUse) {
						return fmt.Errorf("%w: remove its containers first", err)
					}
					return err
				}
				fmt.Fprintln(e.stdout, name)
			}
			return nil
		},
	}
}

// networkView is what `kiln network inspect` prints: the record, members in address order.
type networkView struct {
	*network.Network
	Endpoints []*network.Endpoint
}

func newNetworkInspect(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NETWORK...",
		Short: "Show networks as JSON: bridge, subnet, containers and their addresses and ports",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			nets, err := openNetworks(e)
			if err != nil {
				return err
			}
			out := make([]networkView, 0, len(args))
			for _, name := range args {
				n, err := nets.Get(name)
				if err != nil {
					return err
				}
				v := networkView{Network: n, Endpoints: []*network.Endpoint{}}
				for _, ep := range n.Endpoints {
					v.Endpoints = append(v.Endpoints, ep)
				}
				sort.Slice(v.Endpoints, func(i, j int) bool { return v.Endpoints[i].IP.Less(v.Endpoints[j].IP) })
				out = append(out, v)
			}
			return writeJSON(e, out)
		},
	}
}
