//go:build !linux

package cli

import "errors"

// Monitor is a no-op where containers cannot run.
func Monitor() {}

func detach(*env, *prepared) error { return errors.New("detached containers need Linux") }
