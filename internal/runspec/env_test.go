package runspec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func hostEnv(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for _, e := range kv {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildEnv(t *testing.T) {
	path := "PATH=" + DefaultPath
	fileA := writeFile(t, "a.env", "A=file\nB=file\nFROMHOST\nMISSING\n")
	fileB := writeFile(t, "b.env", "B=second file\n")
	host := hostEnv("FROMHOST=h", "SECRET=s3", "A=host")
	tests := []struct {
		name string
		in   envInput
		want []string
	}{
		{"defaults", envInput{hostname: "abc", home: "/root"},
			[]string{path, "HOSTNAME=abc", "HOME=/root"}},
		{"terminal sets TERM", envInput{hostname: "h", terminal: true, home: "/"},
			[]string{path, "HOSTNAME=h", "TERM=xterm", "HOME=/"}},
		{"image PATH replaces the default", envInput{image: []string{"PATH=/opt/bin", "X=1"}, hostname: "h", home: "/"},
			[]string{"PATH=/opt/bin", "HOSTNAME=h", "X=1", "HOME=/"}},
		{"image sets TERM, HOSTNAME and HOME", envInput{image: []string{"TERM=dumb", "HOSTNAME=img", "HOME=/home/x"}, hostname: "h", terminal: true, home: "/root"},
			[]string{path, "HOSTNAME=img", "TERM=dumb", "HOME=/home/x"}},
		{"env files after image, -e last", envInput{
			image:   []string{"A=image", "B=image", "C=image"},
			files:   []string{fileA, fileB},
			flags:   []string{"C=flag", "A=flag"},
			hostEnv: host, hostname: "h", home: "/"},
			[]string{path, "HOSTNAME=h", "A=flag", "B=second file", "C=flag", "FROMHOST=h", "HOME=/"}},
		{"-e NAME from host", envInput{flags: []string{"SECRET"}, hostEnv: host, hostname: "h", home: "/"},
			[]string{path, "HOSTNAME=h", "SECRET=s3", "HOME=/"}},
		{"-e NAME unset on host unsets it", envInput{image: []string{"GONE=1", "KEEP=1"}, flags: []string{"GONE", "NOPE"}, hostEnv: host, hostname: "h", home: "/"},
			[]string{path, "HOSTNAME=h", "KEEP=1", "HOME=/"}},
		{"-e NAME with no host env", envInput{image: []string{"GONE=1"}, flags: []string{"GONE"}, hostname: "h", home: "/"},
			[]string{path, "HOSTNAME=h", "HOME=/"}},
		{"-e NAME= is empty, not unset", envInput{image: []string{"E=1"}, flags: []string{"E="}, hostname: "h", home: "/"},
			[]string{path, "HOSTNAME=h", "E=", "HOME=/"}},
		{"value keeps = and spaces", envInput{flags: []string{"Q=a=b c "}, hostname: "h", home: "/"},
			[]string{path, "HOSTNAME=h", "Q=a=b c ", "HOME=/"}},
		{"-e HOME unset still gets the passwd home", envInput{image: []string{"HOME=/x"}, flags: []string{"HOME"}, hostname: "h", home: "/home/app"},
			[]string{path, "HOSTNAME=h", "HOME=/home/app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := buildEnv(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("env =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestBuildEnvErrors(t *testing.T) {
	bad := writeFile(t, "bad.env", "OK=1\n# comment\n\nBAD KEY=1\n")
	tests := []struct {
		in   envInput
		want string
	}{
		{envInput{flags: []string{"=x"}}, "-e =x: invalid environment variable"},
		{envInput{flags: []string{""}}, "-e : invalid environment variable"},
		{envInput{files: []string{bad}}, bad + ":4: variable \"BAD KEY\" contains white space"},
		{envInput{files: []string{filepath.Join(t.TempDir(), "none.env")}}, "--env-file: open "},
	}
	for _, tt := range tests {
		_, err := buildEnv(tt.in)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("buildEnv(%+v) err = %v, want prefix %q", tt.in, err, tt.want)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	host := hostEnv("USER=alice", "EMPTY=")
	content := "\xef\xbb\xbfFIRST=bom stripped\n" +
		"# a comment\n" +
		"   # an indented comment\n" +
		"\n" +
		"   INDENTED=kept\n" +
		"QUOTED=\"not unquoted\"\n" +
		"TRAILING=space \n" +
		"EQ=a=b\n" +
		"USER\n" +
		"EMPTY\n" +
		"NOTSET\n" +
		"BLANK=\n" +
		"\tTAB=x\n"
	got, err := parseEnvFile("x.env", []byte(content), host)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"FIRST=bom stripped", "INDENTED=kept", `QUOTED="not unquoted"`, "TRAILING=space ",
		"EQ=a=b", "USER=alice", "EMPTY=", "BLANK=", "TAB=x",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}

	errs := []struct{ content, want string }{
		{"A=1\n=novar\n", "x.env:2: no variable name in \"=novar\""},
		{"A=1\nB=2\nC D=3\n", "x.env:3: variable \"C D\" contains white space"},
		{"NAME \n", "x.env:1: variable \"NAME \" contains white space"},
		{"A=1\nB=\xff\n", "x.env:2: invalid UTF-8"},
		{"A=\x00\n", "x.env:1: contains a NUL byte"},
		{"A=" + strings.Repeat("x", 2<<20) + "\n", "x.env:1: bufio.Scanner: token too long"},
	}
	for _, e := range errs {
		_, err := parseEnvFile("x.env", []byte(e.content), host)
		if err == nil || err.Error() != e.want {
			t.Errorf("parseEnvFile(%.20q) err = %v, want %q", e.content, err, e.want)
		}
	}
}
