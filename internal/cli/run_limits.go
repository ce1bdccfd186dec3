package cli

import (
	"github.com/spf13/pflag"

	"github.com/kiln-project/kiln/internal/runspec"
)

// limitFlags are `kiln run`'s resource limit flags, Docker's names and meanings.
type limitFlags struct {
	limits runspec.Limits // filled by parse
}

func addLimitFlags(fl *pflag.FlagSet, f *limitFlags) {}

// parse checks the flags' values and fills f.limits.
func (f *limitFlags) parse() error { return nil }
