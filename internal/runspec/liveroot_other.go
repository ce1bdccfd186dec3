//go:build !linux

package runspec

import "errors"

type liveRoot struct{}

func openLiveRoot(root string) (*liveRoot, error) {
	return nil, errors.New("reading a running container's root: only on Linux")
}

func (*liveRoot) Close() error { return nil }

func (*liveRoot) readFile(string) ([]byte, error) { return nil, errors.ErrUnsupported }
