package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
)

const (
	helperRootEnv  = "KILN_STORE_TEST_ROOT"
	helperCountEnv = "KILN_STORE_TEST_COUNT"
)

// TestHelperProcess is not a test: TestConcurrentWriters runs the test
// binary again with it, as a second kiln process writing to the same store.
func TestHelperProcess(t *testing.T) {
	root := os.Getenv(helperRootEnv)
	if root == "" {
		t.Skip("helper process for TestConcurrentWriters")
	}
	n, _ := strconv.Atoi(os.Getenv(helperCountEnv))
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	writeTagged(t, s, "sub", n)
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

func TestConcurrentWriters(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperRootEnv+"="+root, helperCountEnv+"="+strconv.Itoa(n))
	out := make(chan error, 1)
	var output []byte
	go func() {
		var err error
		output, err = cmd.CombinedOutput()
		out <- err
	}()
	writeTagged(t, s, "main", n)
	if err := <-out; err != nil {
		t.Fatalf("helper process: %v\n%s", err, output)
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
