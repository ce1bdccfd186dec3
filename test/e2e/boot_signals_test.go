package e2e

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// signalsProgram is the app of the signal and output tests: it waits for a signal, ignores
// them, or writes numbered lines on stdout and stderr in turn.
const signalsProgram = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	switch os.Args[1] {
	case "trap":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		fmt.Println("ready")
		fmt.Println("got", <-c)
		os.Exit(42)
	case "ignore":
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "lines":
		for i := 1; i <= 300; i++ {
			fmt.Printf("out-line-%d\n", i)
			fmt.Fprintf(os.Stderr, "err-line-%d\n", i)
		}
	}
}
`

// signalsImage builds signalsProgram into an image named sig.
func signalsImage(t *testing.T, root string) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.go"), signalsProgram, 0o644)
	writeFile(t, filepath.Join(dir, "go.mod"), "module sig\n\ngo 1.26\n", 0o644)
	build := exec.Command("go", "build", "-o", "sig", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the signals program: %v\n%s", err, out)
	}
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: sig
contents:
  binaries:
    - {src: ./sig, dst: /sig}
config:
  entrypoint: [/sig]
`, 0o644)
	mustKiln(t, root, "build", dir)
}

// TestBootSignals: kiln boot passes the signals it gets to the app, as docker run does, and
// exits with the app's status; a second SIGTERM ends the VM.
func TestBootSignals(t *testing.T) {
	needBoot(t)
	root := t.TempDir()
	signalsImage(t, root)

	t.Run("SIGTERM reaches the app", func(t *testing.T) {
		b := startBoot(t, root, "trap")
		b.cmd.Process.Signal(syscall.SIGTERM)
		code, out := b.wait(t)
		if code != 42 || !strings.Contains(out, "got terminated\n") {
			t.Errorf("exit %d, want the app's 42; stdout %q, stderr %q", code, out, b.stderr.String())
		}
	})

	t.Run("terminal ^C reaches the app, not qemu", func(t *testing.T) {
		// A terminal sends ^C's SIGINT to its whole foreground process group: kiln's.
		b := startBoot(t, root, "trap")
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGINT)
		code, out := b.wait(t)
		if code != 42 || !strings.Contains(out, "got interrupt\n") {
			t.Errorf("exit %d, want the app's 42; stdout %q, stderr %q", code, out, b.stderr.String())
		}
	})

	t.Run("a second SIGTERM kills the VM", func(t *testing.T) {
		b := startBoot(t, root, "ignore")
		b.cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(500 * time.Millisecond)
		b.cmd.Process.Signal(syscall.SIGTERM)
		code, _ := b.wait(t)
		if code != 125 || !strings.Contains(b.stderr.String(), "VM killed") {
			t.Errorf("exit %d, stderr %q; want 125 and the VM killed", code, b.stderr.String())
		}
	})
}

// TestBootLinesWhole: stdout and stderr on one pipe (2>&1) mix line by line: no line of one
// is cut by bytes of the other.
func TestBootLinesWhole(t *testing.T) {
	needBoot(t)
	root := t.TempDir()
	signalsImage(t, root)
	cmd := exec.Command(kiln, "--root", root, "boot", "sig", "--timeout", "5m", "--", "lines")
	var both bytes.Buffer
	cmd.Stdout, cmd.Stderr = &both, &both // one pipe for both
	if err := cmd.Run(); err != nil {
		t.Fatalf("kiln boot: %v\n%s", err, both.String())
	}
	line := regexp.MustCompile(`^(out|err)-line-[0-9]+$|^kiln: `)
	outs, errs := 0, 0
	for _, l := range strings.Split(strings.TrimSuffix(both.String(), "\n"), "\n") {
		if !line.MatchString(l) {
			t.Errorf("torn line %q", l)
		}
		outs += strings.Count(l, "out-line-")
		errs += strings.Count(l, "err-line-")
	}
	if outs != 300 || errs != 300 {
		t.Errorf("%d stdout and %d stderr lines, want 300 each", outs, errs)
	}
}

// bootRun is a kiln boot started in a process group of its own, as a shell starts a job.
type bootRun struct {
	cmd    *exec.Cmd
	lines  chan string
	stdout strings.Builder
	stderr bytes.Buffer
}

// startBoot boots the sig image with arg and waits until the app says "ready".
func startBoot(t *testing.T, root, arg string) *bootRun {
	t.Helper()
	b := &bootRun{cmd: exec.Command(kiln, "--root", root, "boot", "sig", "--timeout", "5m", "--", arg), lines: make(chan string)}
	b.cmd.Stderr = &b.stderr
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.cmd.Process.Kill() })
	go b.read(out)
	for l := range b.lines {
		if l == "ready" {
			return b
		}
		b.stdout.WriteString(l + "\n")
	}
	b.cmd.Wait()
	t.Fatalf("the app never said ready; stdout %q, stderr %q", b.stdout.String(), b.stderr.String())
	return nil
}

func (b *bootRun) read(out io.Reader) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		b.lines <- sc.Text()
	}
	close(b.lines)
}

// wait returns kiln's exit status and the app's stdout (what followed "ready").
func (b *bootRun) wait(t *testing.T) (int, string) {
	t.Helper()
	var rest strings.Builder
	for l := range b.lines {
		rest.WriteString(l + "\n")
	}
	err := b.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), rest.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, rest.String()
}
