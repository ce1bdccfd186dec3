package boot

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestForwardHoldsUntilReady: signals that come before the guest listens are sent once it does,
// in order; those about kiln itself are not sent.
func TestForwardHoldsUntilReady(t *testing.T) {
	sigs := make(chan os.Signal, 8)
	ready, done := make(chan struct{}), make(chan struct{})
	control := &writes{}
	result := make(chan error, 1)
	go func() { result <- forward(context.Background(), Options{Signals: sigs}, nil, control, ready, done) }()
	sigs <- syscall.SIGUSR1
	sigs <- syscall.SIGWINCH
	sigs <- syscall.SIGTERM
	time.Sleep(50 * time.Millisecond)
	if got := control.all(); len(got) != 0 {
		t.Fatalf("sent before the guest was ready: %q", got)
	}
	close(ready)
	sigs <- syscall.SIGHUP
	want := "kiln-signal 10\nkiln-signal 15\nkiln-signal 1\n"
	deadline := time.Now().Add(10 * time.Second)
	for joined(control) != want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := joined(control); got != want {
		t.Errorf("sent %q, want %q", got, want)
	}
	close(done)
	if err := <-result; err != nil {
		t.Errorf("forward: %v, want nil once done", err)
	}
}

// TestForwardSecondInterruptKills: the first SIGINT is the app's, a second SIGINT or SIGTERM
// is kiln's to end the VM.
func TestForwardSecondInterruptKills(t *testing.T) {
	sigs := make(chan os.Signal, 8)
	ready := make(chan struct{})
	close(ready)
	control := &writes{}
	result := make(chan error, 1)
	go func() {
		result <- forward(context.Background(), Options{Signals: sigs}, nil, control, ready, make(chan struct{}))
	}()
	sigs <- syscall.SIGINT
	deadline := time.Now().Add(10 * time.Second)
	for joined(control) == "" && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	sigs <- syscall.SIGTERM
	if err := <-result; err == nil || !strings.Contains(err.Error(), "VM killed") {
		t.Errorf("forward: %v, want the VM killed", err)
	}
	if got := joined(control); got != "kiln-signal 2\n" {
		t.Errorf("sent %q, want the first SIGINT only", got)
	}
}

func joined(w *writes) string {
	var b strings.Builder
	for _, p := range w.all() {
		b.Write(p)
	}
	return b.String()
}
