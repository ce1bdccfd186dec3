package container

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T) *Containers {
	t.Helper()
	cs, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func create(t *testing.T, cs *Containers, st *State) *Container {
	t.Helper()
	c, err := cs.Create(st)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCreateAndGet(t *testing.T) {
	cs := open(t)
	st := &State{Name: "web", Image: "curl:latest", Layers: []string{"sha256:aa"}}
	c := create(t, cs, st)
	if !isID(c.ID()) || st.ID != c.ID() || st.Status != StatusCreated || st.Created.IsZero() {
		t.Fatalf("created %+v", st)
	}
	for _, sub := range []string{"upper", "work", "rootfs", "state.json", "lock"} {
		if _, err := os.Lstat(filepath.Join(c.Dir(), sub)); err != nil {
			t.Error(err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(c.Dir(), "upper")); fi.Mode().Perm() != 0o755 {
		t.Errorf("upper mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(cs.dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("containers mode %v", fi.Mode())
	}
	if got, want := c.LogPath(), filepath.Join(c.Dir(), "container.log"); got != want {
		t.Errorf("LogPath %s, want %s", got, want)
	}
	for _, ref := range []string{c.ID(), c.ID()[:3], c.ID()[:12], "web", "/web"} {
		got, err := cs.Get(ref)
		if err != nil || got.ID() != c.ID() {
			t.Errorf("Get(%q) = %v, %v", ref, got, err)
		}
	}
	for _, ref := range []string{"nope", c.ID()[:2], strings.Repeat("0", 64), ""} {
		if _, err := cs.Get(ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v, want ErrNotFound", ref, err)
		}
	}
	got, err := c.State()
	if err != nil || got.Name != "web" || got.Image != "curl:latest" || got.Layers[0] != "sha256:aa" {
		t.Fatalf("State = %+v, %v", got, err)
	}
}

func TestCreateTakesOnlyNewIDs(t *testing.T) {
	cs := open(t)
	id := NewID()
	c, err := cs.Create(&State{ID: id})
	if err != nil || c.ID() != id {
		t.Fatalf("Create with an ID from NewID: %v", err)
	}
	for _, bad := range []string{"web", strings.Repeat("g", 64), id} {
		if _, err := cs.Create(&State{ID: bad}); err == nil {
			t.Errorf("Create with ID %q (not new, or not an ID) succeeded", bad)
		}
	}
}

func TestCreateRefusesBadName(t *testing.T) {
	cs := open(t)
	for _, name := range []string{"a", "-web", ".web", "we b", "a/b", "..", "ünï", strings.Repeat("a", 256)} {
		if _, err := cs.Create(&State{Name: name}); err == nil || !strings.Contains(err.Error(), "invalid container name") {
			t.Errorf("name %q: %v", name, err)
		}
	}
	for _, name := range []string{"ab", "A1", "my_app.v2-x", "0" + strings.Repeat("z", 254)} {
		if _, err := ValidateName(name); err != nil {
			t.Errorf("name %q: %v", name, err)
		}
	}
	entries, _ := os.ReadDir(cs.dir)
	for _, e := range entries {
		if isID(e.Name()) {
			t.Errorf("left %s", e.Name())
		}
	}
}

func TestGeneratedNames(t *testing.T) {
	cs := open(t)
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		st := &State{}
		create(t, cs, st)
		if _, err := ValidateName(st.Name); err != nil || !strings.Contains(st.Name, "_") || seen[st.Name] {
			t.Fatalf("generated %q (%v)", st.Name, err)
		}
		seen[st.Name] = true
	}
}

func TestNameInUse(t *testing.T) {
	cs := open(t)
	first := create(t, cs, &State{Name: "db"})
	_, err := cs.Create(&State{Name: "db"})
	var inUse *NameInUseError
	if !errors.Is(err, ErrNameInUse) || !errors.As(err, &inUse) || inUse.ID != first.ID() || !strings.Contains(err.Error(), first.ID()) {
		t.Fatalf("second create: %v", err)
	}
	if err := first.Remove(); err != nil {
		t.Fatal(err)
	}
	create(t, cs, &State{Name: "db"}) // freed by Remove
}

// A name file whose container is gone (a crash between the rename and the unlink) is taken over.
func TestStaleNameIsReclaimed(t *testing.T) {
	cs := open(t)
	if err := cs.writeName("ghost", strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	c := create(t, cs, &State{Name: "ghost"})
	if got, err := cs.Get("ghost"); err != nil || got.ID() != c.ID() {
		t.Fatalf("Get(ghost) = %v, %v", got, err)
	}
}

// Goroutines and other processes race for one name: exactly one wins.
func TestNameRace(t *testing.T) {
	root := t.TempDir()
	cs, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, procs = 8, 4
	type proc struct {
		cmd   *exec.Cmd
		out   *bufio.Scanner
		start func() error
	}
	var ps []proc
	for i := 0; i < procs; i++ {
		cmd := helperCmd(os.Args[0], "claim", root, "prize")
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := proc{cmd: cmd, out: bufio.NewScanner(stdout), start: stdin.Close}
		if !p.out.Scan() || p.out.Text() != "ready" {
			t.Fatalf("helper: %q", p.out.Text())
		}
		ps = append(ps, p)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  []string
		begin = make(chan struct{})
	)
	for i := 0; i < goroutines; i++ {
		wg.Go(func() {
			<-begin
			c, err := cs.Create(&State{Name: "prize"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins = append(wins, c.ID())
			case !errors.Is(err, ErrNameInUse):
				t.Error(err)
			}
		})
	}
	close(begin)
	for _, p := range ps {
		p.start()
	}
	wg.Wait()
	for _, p := range ps {
		if p.out.Scan() && strings.HasPrefix(p.out.Text(), "won ") {
			wins = append(wins, strings.TrimPrefix(p.out.Text(), "won "))
		}
		if err := p.cmd.Wait(); err != nil {
			t.Error(err)
		}
	}
	if len(wins) != 1 {
		t.Fatalf("%d winners: %v", len(wins), wins)
	}
	got, err := cs.Get("prize")
	if err != nil || got.ID() != wins[0] {
		t.Fatalf("Get(prize) = %v, %v; winner %s", got, err, wins[0])
	}
	if ids, _ := cs.ids(); len(ids) != 1 {
		t.Fatalf("%d containers, want 1 (losers must leave nothing)", len(ids))
	}
}

func TestAmbiguousPrefix(t *testing.T) {
	cs := open(t)
	n := 0
	cs.newID = func() string { n++; return "abc" + strings.Repeat(string(rune('0'+n)), 61) }
	a := create(t, cs, &State{})
	create(t, cs, &State{})
	if _, err := cs.Get("abc"); !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), `"abc"`) {
		t.Fatalf("Get(abc): %v", err)
	}
	if got, err := cs.Get("abc1"); err != nil || got.ID() != a.ID() {
		t.Fatalf("Get(abc1) = %v, %v", got, err)
	}
	// A name wins over an id prefix, as in Docker.
	named := create(t, cs, &State{Name: "abc"})
	if got, err := cs.Get("abc"); err != nil || got.ID() != named.ID() {
		t.Fatalf("Get(abc) with a container named abc = %v, %v", got, err)
	}
}

func TestListNewestFirst(t *testing.T) {
	cs := open(t)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, name := range []string{"middle", "oldest", "newest"} {
		offset := map[int]time.Duration{0: time.Hour, 1: 0, 2: 2 * time.Hour}[i]
		create(t, cs, &State{Name: name, Created: base.Add(offset)})
	}
	states, err := cs.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range states {
		names = append(names, st.Name)
	}
	if got := strings.Join(names, " "); got != "newest middle oldest" {
		t.Fatalf("List order: %s", got)
	}
}

// What a crashed Create or Remove leaves in tmp/ is removed by the next Open.
func TestOpenCleansLeftovers(t *testing.T) {
	root := t.TempDir()
	cs, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"tmp/" + strings.Repeat("c", 64) + "/upper", "tmp/rm-" + strings.Repeat("d", 64) + "/upper/x"} {
		if err := os.MkdirAll(cs.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(cs.path("tmp")); len(entries) != 0 {
		t.Fatalf("tmp/ still holds %v", entries)
	}
}
