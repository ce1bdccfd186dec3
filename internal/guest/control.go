package guest

import (
	"bufio"
	"io"
	"strconv"
	"strings"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// readRequests calls signal with the number of every "kiln-signal N" line r gives, until r
// ends. Other lines are ignored: a later host may ask for more.
func readRequests(r io.Reader, signal func(int)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if n, ok := parseSignal(sc.Text()); ok {
			signal(n)
		}
	}
}

// parseSignal reads "kiln-signal N", N a Linux signal number (1-64).
func parseSignal(line string) (int, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(line), bootconfig.SignalPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 1 && n <= 64
}
