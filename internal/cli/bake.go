package cli

import "github.com/spf13/cobra"

func newBake(e *env) *cobra.Command {
	return &cobra.Command{Use: "bake", Hidden: true, Short: "not yet"}
}
