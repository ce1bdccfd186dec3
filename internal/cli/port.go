package cli

import "github.com/spf13/cobra"

func newPort(e *env) *cobra.Command {
	return &cobra.Command{Use: "port", Hidden: true, Short: "not yet"}
}
