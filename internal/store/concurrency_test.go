package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The helper process is the test binary run again as a second kiln process
// on the same store. It reports "ready" by creating root/ready, then waits for
// root/go.
const (
	helperRootEnv  = "KILN_STORE_TEST_ROOT"
	helperModeEnv  = "KILN_STORE_TEST_MODE" // "write N" or "hang"
	helperTimeout  = 30 * time.Second
	helperPollTime = 5 * time.Millisecond
)

func TestHelperProcess(t *testing.T) {
	root := os.Getenv(helperRootEnv)
	if root == "" {
		t.Skip("helper process for the multi-process tests")
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	switch mode := os.Getenv(helperModeEnv); mode {
	case "hang": // begin, stage an image, wait to be killed
		tx, err := s.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		h, err := tx.WriteImage(randomImage(t))
		if err != nil {
			t.Fatal(err)
		}
		tx.Tag("killed", h)
		os.WriteFile(filepath.Join(root, "ready"), nil, 0o644)
		time.Sleep(helperTimeout)
		// Keep tx reachable: otherwise its lock file can be finalized (closing the fd drops
		// the flock) and another process would rightly take the staging dir for stale.
		runtime.KeepAlive(tx)
		t.Fatal("not killed")
	default:
		n, _ := strconv.Atoi(mode[len("write "):])
		os.WriteFile(filepath.Join(root, "ready"), nil, 0o644)
		waitFile(t, filepath.Join(root, "go"))
		writeTagged(t, s, "sub", n)
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(helperTimeout); time.Now().Before(deadline); time.Sleep(helperPollTime) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s did not appear", path)
}

func startHelper(t *testing.T, root, mode string) (*exec.Cmd, chan error, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), helperRootEnv+"="+root, helperModeEnv+"="+mode)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFile(t, filepath.Join(root, "ready"))
	return cmd, done, out
}

type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// writeTagged writes n random images at once, tagging them prefix-0 ...
func writeTagged(t *testing.T, s *Store, prefix string, n int) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			img := randomImage(t)
			tx, err := s.Begin(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			defer tx.Abort()
			h, err := tx.WriteImage(img)
			if err == nil {
				err = tx.Tag(fmt.Sprintf("%s-%d", prefix, i), h)
			}
			if err == nil {
				err = tx.Commit()
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// Eight goroutines and a second process, each with eight goroutines, commit
// tags at once: none is lost.
func TestConcurrentWriters(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	_, done, out := startHelper(t, root, "write "+strconv.Itoa(n))
	os.WriteFile(filepath.Join(root, "go"), nil, 0o644)
	writeTagged(t, s, "main", n)
	if err := <-done; err != nil {
		t.Fatalf("helper process: %v\n%s", err, out)
	}

	tags, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tg := range tags {
		got = append(got, tg.Ref)
	}
	var want []string
	for _, p := range []string{"main", "sub"} {
		for i := range n {
			want = append(want, fmt.Sprintf("%s-%d:latest", p, i))
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("tags = %v\nwant %v", got, want)
	}
	if p, err := s.Check(context.Background()); err != nil || len(p) != 0 {
		t.Errorf("Check() = %v, %v", p, err)
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp/ holds %v", left)
	}
}

// A process killed inside a transaction leaves blobs/ and index.json as they
// were; its staging dir is removed by the next Begin.
func TestKilledTransaction(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	commitImage(t, s, randomImage(t), "before")
	before := snapshot(t, s)

	cmd, done, _ := startHelper(t, root, "hang")
	if left := tmpEntries(t, s); len(left) != 1 {
		t.Fatalf("tmp/ holds %v while the helper's transaction runs", left)
	}
	// The running transaction's dir survives other transactions.
	commitImage(t, s, randomImage(t), "during")
	if left := tmpEntries(t, s); len(left) != 1 {
		t.Fatalf("tmp/ holds %v, want the helper's staging dir", left)
	}
	s.Untag("during")
	before2 := snapshot(t, s)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done

	if after := snapshot(t, s); after != before2 {
		t.Errorf("killed transaction changed the store:\n%s\n---\n%s", before2, after)
	}
	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tx.Abort()
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp/ holds %v after Begin", left)
	}
	if _, err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, s); after != before {
		t.Errorf("after gc the store differs from before:\n%s\n---\n%s", before, after)
	}
}

// Tags and untags from many goroutines, each outside a transaction.
func TestConcurrentTagUntag(t *testing.T) {
	s := newStore(t)
	h := commitImage(t, s, randomImage(t), "src")
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			ref := fmt.Sprintf("t%d", i)
			if err := s.Tag(h.Hex[:12], ref); err != nil {
				t.Error(err)
			}
			if i%2 == 0 {
				if _, err := s.Untag(ref); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	tags, _ := s.List()
	if len(tags) != 1+8 {
		t.Errorf("%d tags, want 9: %v", len(tags), tags)
	}
}
