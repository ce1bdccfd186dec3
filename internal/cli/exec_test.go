package cli

import (
	"slices"
	"testing"
)

func TestExecSetEnv(t *testing.T) {
	t.Setenv("KILN_TEST_FROM_HOST", "host value")
	base := []string{"PATH=/bin", "HOME=/root", "GONE=1"}
	got := setEnv(base, []string{"HOME=/home/u", "NEW=x", "KILN_TEST_FROM_HOST", "GONE"})
	want := []string{"PATH=/bin", "HOME=/home/u", "NEW=x", "KILN_TEST_FROM_HOST=host value"}
	if !slices.Equal(got, want) {
		t.Errorf("setEnv = %q, want %q", got, want)
	}
	if base[1] != "HOME=/root" {
		t.Errorf("setEnv changed its input: %q", base)
	}
}
