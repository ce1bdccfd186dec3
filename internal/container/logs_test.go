package container

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is written by Follow and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// appendLines plays a container writing its log, then exiting.
func appendLines(t *testing.T, path string, lines []string, exited *atomic.Bool) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	for _, l := range lines {
		time.Sleep(20 * time.Millisecond)
		f.WriteString(l)
	}
	exited.Store(true)
}

func TestFollowAppended(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	os.WriteFile(path, []byte("first\n"), 0o600)
	var exited atomic.Bool
	go appendLines(t, path, []string{"two\n", "three", " and more\n"}, &exited)
	var out syncBuffer
	if err := Follow(context.Background(), path, &out, true, exited.Load); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "first\ntwo\nthree and more\n" {
		t.Fatalf("followed %q", got)
	}
}

func TestFollowWaitsForTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	var exited atomic.Bool
	go func() {
		time.Sleep(50 * time.Millisecond)
		appendLines(t, path, []string{"late\n"}, &exited)
	}()
	var out syncBuffer
	if err := Follow(context.Background(), path, &out, true, exited.Load); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "late\n" {
		t.Fatalf("followed %q", got)
	}
}

func TestFollowWithoutFollowing(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := Follow(context.Background(), filepath.Join(dir, "missing.log"), &out, false, nil); err != nil || out.Len() != 0 {
		t.Fatalf("missing log: %q, %v", out.String(), err)
	}
	path := filepath.Join(dir, "container.log")
	os.WriteFile(path, []byte("a\nb\n"), 0o600)
	if err := Follow(context.Background(), path, &out, false, func() bool { return false }); err != nil || out.String() != "a\nb\n" {
		t.Fatalf("log: %q, %v", out.String(), err)
	}
}

func TestFollowCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	os.WriteFile(path, []byte("x\n"), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	var out syncBuffer
	began := time.Now()
	err := Follow(ctx, path, &out, true, func() bool { return false })
	if !errors.Is(err, context.DeadlineExceeded) || out.String() != "x\n" {
		t.Fatalf("Follow = %v, %q", err, out.String())
	}
	if d := time.Since(began); d > time.Second {
		t.Fatalf("took %v to notice the cancel", d)
	}
}

// Output appended while following shows up at once, not at the next poll.
func TestFollowIsPrompt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	os.WriteFile(path, nil, 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	go Follow(ctx, path, &out, true, nil)
	time.Sleep(50 * time.Millisecond)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	defer f.Close()
	var worst time.Duration
	for i := 0; i < 5; i++ {
		f.WriteString("tick\n")
		began := time.Now()
		for strings.Count(out.String(), "tick") <= i && time.Since(began) < time.Second {
			time.Sleep(time.Millisecond)
		}
		worst = max(worst, time.Since(began))
	}
	if strings.Count(out.String(), "tick") != 5 {
		t.Fatalf("followed %q", out.String())
	}
	t.Logf("slowest line took %v", worst)
}

func TestTail(t *testing.T) {
	long := strings.Repeat("x", 70<<10) + "\n" // longer than one backwards read
	for _, tc := range []struct {
		content string
		n       int
		want    string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\nc\n", 0, ""},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"a\nb\nc\n", -1, "a\nb\nc\n"},
		{"", 2, ""},
		{"\n\n", 1, "\n"},
		{"a\n" + long + "z\n", 2, long + "z\n"},
	} {
		path := filepath.Join(t.TempDir(), "container.log")
		os.WriteFile(path, []byte(tc.content), 0o600)
		var out bytes.Buffer
		if err := FollowTail(context.Background(), path, &out, tc.n, false, nil); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("tail %d of %.20q = %.20q, want %.20q", tc.n, tc.content, out.String(), tc.want)
		}
	}
}
