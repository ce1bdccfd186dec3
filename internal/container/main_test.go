package container

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Tests re-execute the test binary to act as another kiln process: KILN_CONTAINER_HELPER
// names what it does, with the kiln root in KILN_CONTAINER_ROOT.
func TestMain(m *testing.M) {
	if h := os.Getenv("KILN_CONTAINER_HELPER"); h != "" {
		if err := helper(h, os.Getenv("KILN_CONTAINER_ROOT"), os.Getenv("KILN_CONTAINER_ARG")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperCmd runs bin (the test binary or a copy) as a helper doing what.
func helperCmd(bin, what, root, arg string, env ...string) *exec.Cmd {
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "KILN_CONTAINER_HELPER="+what, "KILN_CONTAINER_ROOT="+root,
		"KILN_CONTAINER_ARG="+arg, "GORACE=atexit_sleep_ms=0") // -race would sleep 1s at exit
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

func helper(what, root, arg string) error {
	cs, err := Open(root)
	if err != nil {
		return err
	}
	switch what {
	case "claim": // claim name arg once stdin is closed; report on stdout
		fmt.Println("ready")
		io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		c, err := cs.Create(&State{Name: arg})
		if errors.Is(err, ErrNameInUse) {
			fmt.Println("in-use")
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Println("won", c.ID())
		return nil
	case "bind-and-remove": // in a new mount namespace: bind KILN_CONTAINER_VOLUME into container arg, remove it
		c, err := cs.Get(arg)
		if err != nil {
			return err
		}
		if err := bindMount(os.Getenv("KILN_CONTAINER_VOLUME"), filepath.Join(c.Dir(), "rootfs")); err != nil {
			return fmt.Errorf("cannot mount: %w", err)
		}
		return c.Remove()
	case "remove": // remove container arg
		c, err := cs.Get(arg)
		if err != nil {
			return err
		}
		return c.Remove()
	}
	return fmt.Errorf("unknown helper %q", what)
}
