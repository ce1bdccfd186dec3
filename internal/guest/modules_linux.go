package guest

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// loadModules loads kernel modules in the order given (dependencies first, as bake orders
// them). A module already loaded, or built in, is fine.
func loadModules(paths []string) error {
	for _, p := range paths {
		if err := loadModule(p); err != nil {
			return err
		}
	}
	return nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return &os.PathError{Op: "load module", Path: path, Err: err}
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "load module", Path: path, Err: err}
	}
	return nil
}
