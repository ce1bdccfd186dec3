//go:build !linux

package build

import "errors"

type treeMount struct{ dir string }

func mountLayers([]string) (*treeMount, error) {
	return nil, errors.New("mount: stages and squash need Linux overlayfs")
}

func (m *treeMount) close() {}
