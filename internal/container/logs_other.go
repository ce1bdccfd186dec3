//go:build !linux

package container

import (
	"context"
	"time"
)

// waker polls where there is no inotify.
type waker struct{}

func newWaker() *waker                                           { return &waker{} }
func (w *waker) watch(path string)                               {}
func (w *waker) wait(ctx context.Context, d time.Duration) error { return sleep(ctx, d) }
func (w *waker) close()                                          {}
