package bootconfig

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitLikeTheKernel(t *testing.T) {
	got := Split(`console=hvc0  quiet kiln.env.A="x y" "kiln.env.B=1 2" kiln.args=["sh","-c","echo hi"]` + "\n")
	want := []string{"console=hvc0", "quiet", "kiln.env.A=x y", "kiln.env.B=1 2", `kiln.args=["sh","-c","echo hi"]`}
	if !slices.Equal(got, want) {
		t.Fatalf("Split = %q, want %q", got, want)
	}
}

func TestParamsRoundTrip(t *testing.T) {
	args := []string{"sh", "-c", "echo $A; exit 3"}
	mounts := []Mount{{Tag: "v0", Target: "/data", ReadOnly: true}}
	ps, err := Params([]string{"A=hello world", "EMPTY="}, args, mounts)
	if err != nil {
		t.Fatal(err)
	}
	c := Config{Args: []string{"baked"}, Env: []string{"A=baked", "PATH=/bin"}}
	if err := c.Apply("console=ttyS0 " + strings.Join(ps, " ")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Args, args) {
		t.Errorf("Args = %q, want %q", c.Args, args)
	}
	if want := []string{"A=hello world", "PATH=/bin", "EMPTY="}; !slices.Equal(c.Env, want) {
		t.Errorf("Env = %q, want %q", c.Env, want)
	}
	if !slices.Equal(c.Mounts, mounts) {
		t.Errorf("Mounts = %+v, want %+v", c.Mounts, mounts)
	}
}

func TestParamsRefuseQuotes(t *testing.T) {
	if _, err := Params([]string{`A=say "hi"`}, nil, nil); err == nil {
		t.Error("a double quote in an env value was accepted")
	}
}

// Arguments reach kiln-init as they were, whatever they hold: double quotes, backslashes, blanks,
// newlines, control characters, unicode.
func TestParamsArgsRoundTrip(t *testing.T) {
	args := []string{`echo "hi"`, `a\`, `\"`, "tab\there", "two\nlines", "\x01", "é ü 語", "", `"`, `\`}
	ps, err := Params(nil, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	if err := c.Apply("quiet " + strings.Join(ps, " ") + " panic=-1"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Args, args) {
		t.Errorf("Args = %q, want %q", c.Args, args)
	}
}

func TestParamsRefuseWhatTheCommandLineCannotCarry(t *testing.T) {
	for _, env := range []string{"X kiln.workdir=/etc", "A B=1", "A\"B=1", "A\tB=1", "É=1"} {
		if _, err := Params([]string{env}, nil, nil); err == nil {
			t.Errorf("env %q accepted", env)
		}
	}
	if _, err := Params(nil, []string{"caf\xe9"}, nil); err == nil {
		t.Error("an argument that is not UTF-8 was accepted (it would arrive changed)")
	}
}

func TestApplyErrors(t *testing.T) {
	for _, line := range []string{"kiln.args=notjson", "kiln.bogus=1", "kiln.mount=x", "kiln.net=10.0.0.1", "kiln.env.=1"} {
		var c Config
		if err := c.Apply(line); err == nil {
			t.Errorf("Apply(%q) accepted it", line)
		}
	}
	var c Config
	if err := c.Apply("kiln.net=user kiln.hostname=vm kiln.workdir=/srv"); err != nil || c.Net == nil || c.Net.Gateway != "10.0.2.2" || c.Hostname != "vm" || c.Workdir != "/srv" {
		t.Errorf("Apply: %+v, %v", c, err)
	}
}
