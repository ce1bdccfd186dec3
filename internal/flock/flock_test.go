package flock

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestExclusiveExcludesAndSharedShares(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	a, err := Open(context.Background(), p, Shared, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := TryOpen(p, Shared, false)
	if err != nil || b == nil {
		t.Fatalf("a second shared lock: %v %v", b, err)
	}
	if c, err := TryOpen(p, Exclusive, false); err != nil || c != nil {
		t.Fatalf("an exclusive lock beside shared ones: %v %v", c, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := Open(ctx, p, Exclusive, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting past the deadline: %v", err)
	}
	Unlock(a)
	Unlock(b)
	c, err := Open(context.Background(), p, Exclusive, false)
	if err != nil {
		t.Fatal(err)
	}
	Unlock(c)
}

func TestDirectories(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(context.Background(), dir, Exclusive, false)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := TryOpen(dir, Exclusive, false); err != nil || b != nil {
		t.Fatalf("a directory locked twice: %v %v", b, err)
	}
	Unlock(a)
}
