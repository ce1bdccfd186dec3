package store

import (
	"regexp"
	"sync"
)

// lazyRegexp compiles expr on first use, not when every kiln process starts (a container's
// init and a monitor run this binary too).
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
