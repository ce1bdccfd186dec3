package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// guestProgram is the app the boot tests put in an image: a static Go program that prints its
// arguments and env, reads and writes a shared directory, serves HTTP, and exits as told.
const guestProgram = `package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
)

func main() {
	fmt.Println("guest args", os.Args[1:])
	fmt.Fprintln(os.Stderr, "guest GREETING="+os.Getenv("GREETING"))
	if b, err := os.ReadFile("/tmp/from-image"); err == nil {
		fmt.Printf("guest /tmp/from-image %s", b)
	}
	if d := os.Getenv("VOLUME"); d != "" {
		in, err := os.ReadFile(d + "/in.txt")
		fmt.Printf("guest read %q %v\n", in, err)
		if err := os.WriteFile(d+"/out.txt", []byte("written by the guest\n"), 0o644); err != nil {
			fmt.Println("guest write:", err)
		}
	}
	if addr := os.Getenv("SERVE"); addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println("guest listen:", err)
			os.Exit(2)
		}
		fmt.Println("guest listening")
		done := make(chan struct{})
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, "pong from the guest")
			close(done)
		})}
		go srv.Serve(l)
		<-done
		srv.Shutdown(context.Background()) // waits for the answer to be sent
	}
	code, _ := strconv.Atoi(os.Getenv("EXIT"))
	os.Exit(code)
}
`

// needBoot skips unless qemu and a kernel are installed.
func needBoot(t *testing.T) {
	t.Helper()
	need(t, "qemu-system-x86_64")
	if ks, _ := filepath.Glob("/boot/vmlinuz-*"); len(ks) == 0 {
		t.Skip("SKIP: no kernel in /boot/vmlinuz-* (apt-get install linux-image-cloud-amd64)")
	}
}

// guestImage builds guestProgram into an image named guest, with GREETING=baked in its env.
func guestImage(t *testing.T, root string) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.go"), guestProgram, 0o644)
	writeFile(t, filepath.Join(dir, "go.mod"), "module guest\n\ngo 1.26\n", 0o644)
	build := exec.Command("go", "build", "-o", "guest", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the guest program: %v\n%s", err, out)
	}
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: guest
contents:
  binaries:
    - {src: ./guest, dst: /guest}
  files:
    - {src: ./go.mod, dst: /tmp/from-image}
config:
  entrypoint: [/guest]
  cmd: [baked-arg]
  env: [GREETING=baked]
`, 0o644)
	mustKiln(t, root, "build", dir)
}

func TestBakeDeterministic(t *testing.T) {
	needBoot(t)
	root := t.TempDir()
	guestImage(t, root)
	out := t.TempDir()
	a, b := filepath.Join(out, "a"), filepath.Join(out, "b")
	r := mustKiln(t, root, "bake", "guest", "-o", a)
	if !strings.Contains(r.stdout, "initramfs") {
		t.Errorf("bake reports no initramfs size:\n%s", r.stdout)
	}
	mustKiln(t, root, "bake", "guest", "-o", b)
	for _, f := range []string{"kernel", "initramfs", "cmdline", "config.json"} {
		da, errA := os.ReadFile(filepath.Join(a, f))
		db, errB := os.ReadFile(filepath.Join(b, f))
		if errA != nil || errB != nil || len(da) == 0 {
			t.Fatalf("%s: %v, %v (%d bytes)", f, errA, errB, len(da))
		}
		if !bytes.Equal(da, db) {
			t.Errorf("two bakes of one image differ in %s", f)
		}
	}
	// Baking over an earlier bake replaces it; over anything else is refused.
	mustKiln(t, root, "bake", "guest", "-o", a)
	writeFile(t, filepath.Join(out, "other", "notes.txt"), "mine", 0o644)
	if r := kilnIn(t, root, "bake", "guest", "-o", filepath.Join(out, "other")); r.code == 0 || !strings.Contains(r.stderr, "not a bake") {
		t.Errorf("bake over a directory that is not a bake: exit %d, %s", r.code, r.stderr)
	}
	tree := filepath.Join(out, "tree")
	mustKiln(t, root, "bake", "guest", "-o", tree, "--format", "dir")
	for _, p := range []string{"rootfs/guest", "rootfs/init", "rootfs/kiln/config.json", "kernel", "cmdline"} {
		if _, err := os.Stat(filepath.Join(tree, p)); err != nil {
			t.Errorf("--format dir: %v", err)
		}
	}
}

// TestBootStatic boots the guest program three ways, each boot checking several things.
func TestBootStatic(t *testing.T) {
	needBoot(t)
	root := t.TempDir()
	guestImage(t, root)
	baked := filepath.Join(t.TempDir(), "guest.vm")
	mustKiln(t, root, "bake", "guest", "-o", baked)

	t.Run("status env args", func(t *testing.T) {
		r := kilnIn(t, root, "boot", baked, "--timeout", "5m", "-e", "EXIT=3", "-e", "GREETING=cli", "--", "one", "two words", `say "hi"`, `back\slash`)
		if r.code != 3 {
			t.Fatalf("exit %d, want the app's 3\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, `guest args [one two words say "hi" back\slash]`) {
			t.Errorf("stdout %q lacks the arguments after --, as given", r.stdout)
		}
		if !strings.Contains(r.stdout, "guest /tmp/from-image module guest") {
			t.Errorf("stdout %q: the image's /tmp/from-image is not seen in the VM", r.stdout)
		}
		if !strings.Contains(r.stderr, "guest GREETING=cli\n") {
			t.Errorf("stderr %q: -e GREETING=cli must win over the baked GREETING", r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, "Linux version") {
			t.Errorf("kernel messages shown without --verbose")
		}
	})

	t.Run("image ref, baked env, published port", func(t *testing.T) {
		port := freePort(t)
		cmd := exec.Command(kiln, "--root", root, "boot", "guest", "--timeout", "5m", "-e", "SERVE=:8080", "-p", strconv.Itoa(port)+":8080")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		body, err := getRetrying("http://127.0.0.1:"+strconv.Itoa(port)+"/", exited)
		werr := <-exited
		if err != nil {
			t.Fatalf("GET the published port: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
		}
		if body != "pong from the guest\n" {
			t.Errorf("published port answered %q", body)
		}
		if werr != nil {
			t.Errorf("kiln boot: %v\nstderr: %s", werr, stderr.String())
		}
		if !strings.Contains(stdout.String(), "guest args [baked-arg]") || !strings.Contains(stderr.String(), "guest GREETING=baked\n") {
			t.Errorf("the baked cmd and env were not used:\nstdout: %s\nstderr: %s", stdout.String(), stderr.String())
		}
	})

	t.Run("timeout", func(t *testing.T) {
		// The app serves forever; --timeout ends it wherever the boot is.
		r := kilnIn(t, root, "boot", baked, "--timeout", "2s", "-e", "SERVE=:8080")
		if r.code != 125 || !strings.Contains(r.stderr, "did not power off within --timeout 2s") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("qemu dies with kiln", func(t *testing.T) {
		cmd := exec.Command(kiln, "--root", root, "boot", baked, "--timeout", "5m", "-e", "SERVE=:8080")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		qemu := childOf(t, cmd.Process.Pid)
		cmd.Process.Kill()
		cmd.Wait()
		for i := 0; ; i++ {
			if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(qemu))); err != nil {
				break
			}
			if i == 100 {
				t.Fatalf("qemu (pid %d) outlived kiln by 10 s", qemu)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("9p volume and a NIC", func(t *testing.T) {
		// Both module sets, which share the virtio-mmio transport, loaded in one boot.
		kernel := kernelWith9P(t)
		vol := t.TempDir()
		writeFile(t, filepath.Join(vol, "in.txt"), "written by the host\n", 0o644)
		r := kilnIn(t, root, "boot", "guest", "--kernel", kernel, "--timeout", "5m", "--network", "user", "-e", "VOLUME=/data", "-v", vol+":/data")
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, `guest read "written by the host\n" <nil>`) {
			t.Errorf("the guest did not read the host's file: %s", r.stdout)
		}
		if got, err := os.ReadFile(filepath.Join(vol, "out.txt")); err != nil || string(got) != "written by the guest\n" {
			t.Errorf("the guest's file on the host: %q, %v", got, err)
		}
	})
}

// TestBootCurl boots the dynamic curl image (its ELF closure in the initramfs) in the VM.
func TestBootCurl(t *testing.T) {
	needBoot(t)
	need(t, "curl")
	root := t.TempDir()
	mustKiln(t, root, "build", filepath.Join(repoRoot, "examples", "curl"))
	want := strings.Fields(run(t, "curl", "--version"))[1] // the host's curl is the image's
	r := kilnIn(t, root, "boot", "curl", "--timeout", "5m", "--", "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "curl "+want+" ") {
		t.Fatalf("kiln boot curl -- --version: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	// The bake kiln boot cached goes with gc.
	cached, _ := filepath.Glob(filepath.Join(root, "cache", "boot", "*"))
	if len(cached) != 1 {
		t.Fatalf("cached bakes after one boot: %v, want one", cached)
	}
	if r := kilnIn(t, root, "gc"); r.code != 0 || !strings.Contains(r.stderr, "in 1 cached bakes") {
		t.Fatalf("kiln gc: exit %d\n%s", r.code, r.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "cache", "boot", "*")); len(left) != 0 {
		t.Errorf("cached bakes after gc: %v", left)
	}
}

func TestBootBadInput(t *testing.T) {
	needBoot(t)
	root := t.TempDir()
	guestImage(t, root)
	notKernel := filepath.Join(t.TempDir(), "vmlinuz")
	writeFile(t, notKernel, strings.Repeat("not a kernel\n", 100), 0o644)
	noEntry := t.TempDir()
	writeFile(t, filepath.Join(noEntry, "motd"), "hi\n", 0o644)
	writeFile(t, filepath.Join(noEntry, "kiln.yaml"), "name: noentry\ncontents:\n  files:\n    - {src: ./motd, dst: /etc/motd}\n", 0o644)
	mustKiln(t, root, "build", noEntry)
	emptyPath := t.TempDir()
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"not a kernel", nil, []string{"bake", "guest", "-o", filepath.Join(t.TempDir(), "x"), "--kernel", notKernel}, "not a Linux kernel image"},
		{"no entrypoint", nil, []string{"bake", "noentry", "-o", filepath.Join(t.TempDir(), "x")}, "image noentry has no entrypoint and no cmd"},
		{"boot, no entrypoint", nil, []string{"boot", "noentry"}, "no entrypoint and no cmd"},
		{"command line too long", nil, []string{"boot", "guest", "-e", "BIG=" + strings.Repeat("x", 2100)}, "the kernel command line would be"},
		{"env name with a blank", nil, []string{"boot", "guest", "-e", "X kiln.workdir=/etc"}, "the name holds"},
		{"missing volume", nil, []string{"boot", "guest", "-v", "/does/not/exist:/data"}, "/does/not/exist"},
		{"bad port", nil, []string{"boot", "guest", "-p", "80"}, "-p \"80\": want HOSTPORT:GUESTPORT"},
		{"no qemu", []string{"PATH=" + emptyPath}, []string{"boot", "guest"}, "install qemu-system-x86"},
		{"not a bake", nil, []string{"boot", t.TempDir()}, "not a bake"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := kilnEnv(t, root, c.env, c.args...)
			if r.code != 125 && r.code != 1 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("kiln %s: exit %d, stderr %q, want an error with %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(root, "cache", "boot")); err == nil {
		entries, _ := os.ReadDir(filepath.Join(root, "cache", "boot"))
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".bake-") {
				t.Errorf("a failed boot left %s behind", e.Name())
			}
		}
	}
}

// kernelWith9P is a kernel of /boot whose config has 9P over virtio (Debian's generic
// linux-image-amd64; the cloud kernel has none), or the one
// $KILN_TEST_KERNEL_9P names another (with its modules in ../lib/modules/, as dpkg-deb -x
// unpacks a kernel package, or in /lib/modules/).
func kernelWith9P(t *testing.T) string {
	t.Helper()
	if k := os.Getenv("KILN_TEST_KERNEL_9P"); k != "" {
		return k
	}
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	for _, k := range ks {
		cfg, err := os.ReadFile(strings.Replace(k, "vmlinuz-", "config-", 1))
		if err == nil && bytes.Contains(cfg, []byte("\nCONFIG_NET_9P_VIRTIO=")) && bytes.Contains(cfg, []byte("\nCONFIG_9P_FS=")) {
			return k
		}
	}
	t.Skip("SKIP: no kernel with 9P in /boot (the cloud kernel has none): apt-get install linux-image-amd64")
	return ""
}

// childOf waits for pid's first child (kiln's qemu) and returns its pid.
func childOf(t *testing.T, pid int) int {
	t.Helper()
	for range 300 {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			if fields := strings.Fields(string(b)); len(fields) > 0 {
				child, _ := strconv.Atoi(fields[0])
				return child
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("kiln (pid %d) started no qemu within 30 s", pid)
	return 0
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// getRetrying GETs url until it answers or kiln exits (the guest listens only once it has
// booted; --timeout bounds the wait). It leaves kiln's exit status in exited for the caller.
func getRetrying(url string, exited chan error) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b), err
		}
		select {
		case werr := <-exited:
			exited <- werr
			return "", fmt.Errorf("kiln exited (%v) before the port answered: %w", werr, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
