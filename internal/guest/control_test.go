package guest

import (
	"slices"
	"strings"
	"testing"
)

func TestReadRequests(t *testing.T) {
	in := "noise\nkiln-signal 15\nkiln-signal 0\nkiln-signal 65\nkiln-signal x\n  kiln-signal 2\r\nkiln-later 3\nkiln-signal 10"
	var got []int
	readRequests(strings.NewReader(in), func(n int) { got = append(got, n) })
	if want := []int{15, 2, 10}; !slices.Equal(got, want) {
		t.Errorf("signals %v, want %v", got, want)
	}
}
