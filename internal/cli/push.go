package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/registry"
)

func newPush(e *env) *cobra.Command {
	var tlsVerify, quiet bool
	cmd := &cobra.Command{
		Use:   "push IMAGE [REF]",
		Short: "Send an image from the store to a registry",
		Long: `Send IMAGE (a store name:tag, digest or digest prefix) to REF (host[:port]/repo:tag), or to
IMAGE itself when it names a registry. The manifest goes byte for byte, so the registry's digest is
the store's. Layers the repository has are not sent; layers another repository of the same registry
has (an image pulled from there, or tagged for it) are mounted rather than uploaded. Prints
REF@DIGEST.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			return runPush(cmd, e, args[0], ref, tlsVerify, quiet)
		},
	}
	cmd.Flags().BoolVar(&tlsVerify, "tls-verify", true, "verify the registry's certificate and require HTTPS (but for localhost)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress")
	return cmd
}

func runPush(cmd *cobra.Command, e *env, image, ref string, tlsVerify, quiet bool) error {
	st, err := e.store()
	if err != nil {
		return err
	}
	view := e.transferView("push", quiet)
	p := registry.Pusher{Options: e.registryOptions(tlsVerify, view)}
	start := time.Now()
	res, err := p.Push(cmd.Context(), st, image, ref)
	view.close()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "pushed %s in %s: %d layers, %d uploaded (%s), %d mounted, %d already there\n",
		res.Ref, time.Since(start).Round(time.Millisecond), res.Layers, res.Uploaded, size(res.Bytes), res.Mounted, res.Existing)
	if strings.Contains(res.Ref, "@") {
		fmt.Fprintln(e.stdout, res.Ref)
	} else {
		fmt.Fprintf(e.stdout, "%s@%s\n", res.Ref, res.Digest)
	}
	return nil
}
