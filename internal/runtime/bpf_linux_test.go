package runtime

import (
	"encoding/json"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/seccomp"
)

// The compiled filter crosses to the init as raw bytes and arrives the same.
func TestSeccompProgramRoundTrip(t *testing.T) {
	prog, err := seccomp.Compile(seccomp.Default(seccomp.DockerDefaultCaps()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(initConfig{Mode: modeRun, Seccomp: prog})
	if err != nil {
		t.Fatal(err)
	}
	var back initConfig
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal([]unix.SockFilter(back.Seccomp), prog) {
		t.Errorf("program of %d instructions came back as %d, or changed", len(prog), len(back.Seccomp))
	}
	if err := json.Unmarshal([]byte(`{"Seccomp":"AAAA"}`), &back); err == nil {
		t.Error("3 bytes of program: no error")
	}
}
