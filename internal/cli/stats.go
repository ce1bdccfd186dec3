package cli

import "github.com/spf13/cobra"

func newStats(e *env) *cobra.Command {
	return &cobra.Command{Use: "stats", Hidden: true, Short: "not yet"}
}
