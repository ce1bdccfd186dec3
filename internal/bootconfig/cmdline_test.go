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
	if _, err := Params(nil, []string{`"`}, nil); err == nil {
		t.Error("a double quote in an argument was accepted")
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
