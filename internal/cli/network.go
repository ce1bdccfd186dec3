package cli

import "github.com/spf13/cobra"

func newNetwork(e *env) *cobra.Command {
	return &cobra.Command{Use: "network", Hidden: true, Short: "not yet"}
}
