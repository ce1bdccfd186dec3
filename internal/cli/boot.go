package cli

import "github.com/spf13/cobra"

func newBoot(e *env) *cobra.Command {
	return &cobra.Command{Use: "boot", Hidden: true, Short: "not yet"}
}
