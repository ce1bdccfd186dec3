package closure

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestParseShebang(t *testing.T) {
	for _, tc := range []struct{ head, interp, arg string }{
		{"#!/bin/sh\necho", "/bin/sh", ""},
		{"#! /usr/bin/env  python3 -u \t\nrest", "/usr/bin/env", "python3 -u"},
		{"#!/bin/bash -e", "/bin/bash", "-e"},
		{"#!", "", ""},
	} {
		interp, arg, ok := parseShebang([]byte(tc.head))
		if !ok || interp != tc.interp || arg != tc.arg {
			t.Errorf("%q: got %q %q %v, want %q %q", tc.head, interp, arg, ok, tc.interp, tc.arg)
		}
	}
	if _, _, ok := parseShebang([]byte("\x7fELF")); ok {
		t.Error("an ELF header parsed as a #! line")
	}
}

func TestEnvProgram(t *testing.T) {
	for arg, want := range map[string]string{
		"python3":                    "python3",
		"python3 -u":                 "python3 -u", // one argument: env looks for a program of that name
		"-S python3 -u":              "python3",
		"-Spython3 -u":               "python3",
		"-iS LANG=C bash":            "bash",
		"--split-string=node --x":    "node",
		"-u HOME -S bash":            "", // -u takes all of " HOME -S bash"
		"-u HOME":                    "",
		"-i":                         "",
		"":                           "",
		"-S -- bash":                 "bash",
		"-S -C /tmp perl -w":         "perl",
		"-S FOO=bar -C /tmp perl -w": "-C", // options end at the first NAME=VALUE
	} {
		if got := envProgram(arg); got != want {
			t.Errorf("envProgram(%q) = %q, want %q", arg, got, want)
		}
	}
}

func TestDynamicStringTokenExpansion(t *testing.T) {
	pr := &process{abi: abi{machine: 62}, lib: "lib/x86_64-linux-gnu"} // EM_X86_64
	for in, want := range map[string]string{
		"$ORIGIN/../lib":       "/app/bin/../lib",
		"${ORIGIN}/x:$LIB":     "/app/bin/x:lib/x86_64-linux-gnu",
		"/opt/${PLATFORM}/y":   "/opt/x86_64/y",
		"/opt/$PLATFORM":       "/opt/x86_64",
		"$ORIGINAL/a":          "$ORIGINAL/a", // not a token
		"/$LIB_DIR":            "/$LIB_DIR",
		"/x/${LIB}_x/$UNKNOWN": "/x/lib/x86_64-linux-gnu_x/$UNKNOWN",
		"cost $5":              "cost $5",
	} {
		if got, ok := pr.expand(in, "/app/bin"); !ok || got != want {
			t.Errorf("expand(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	noPlatform := &process{abi: abi{machine: 21}} // EM_PPC64: the CPU decides
	if _, ok := noPlatform.expand("/opt/$PLATFORM", "/"); ok {
		t.Error("$PLATFORM without a value was expanded; ld.so drops the entry")
	}
}

func TestLibDir(t *testing.T) {
	for interp, want := range map[string]string{
		"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "lib/x86_64-linux-gnu", // Debian, Ubuntu
		"/usr/lib64/ld-linux-x86-64.so.2":                "lib64",                // Fedora
		"/usr/lib/ld-linux-x86-64.so.2":                  "lib",                  // Arch
		"/lib/ld-musl-x86_64.so.1":                       "lib",                  // Alpine
	} {
		if got := libDir(interp); got != want {
			t.Errorf("libDir(%s) = %q, want %q", interp, got, want)
		}
	}
}

func TestLookup(t *testing.T) {
	root := t.TempDir()
	mustWrite := func(p string, mode os.FileMode) {
		host := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(host, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite("/usr/bin/prog", 0o755)
	mustWrite("/usr/local/bin/data", 0o644)
	mustWrite("/usr/bin/data", 0o755)
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	r, err := NewResolver(root)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"prog": "/usr/bin/prog", "data": "/usr/bin/data", "/bin/prog": "/bin/prog"} {
		if got, err := r.Lookup(name); err != nil || got != want {
			t.Errorf("Lookup(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	r.PATH = []string{"relative", "/bin"}
	if got, err := r.Lookup("prog"); err != nil || got != "/bin/prog" {
		t.Errorf("Lookup(prog) in /bin = %q, %v", got, err)
	}
	if _, err := r.Lookup("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lookup(nope): got %v, want fs.ErrNotExist", err)
	}
	if _, err := r.Lookup("bin/prog"); err == nil {
		t.Error("Lookup of a relative path succeeded")
	}
}

func FuzzReadObject(f *testing.F) {
	if b, err := os.ReadFile("/usr/bin/true"); err == nil {
		f.Add(b[:min(len(b), 8192)])
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		readObject(bytes.NewReader(b)) // must not panic
	})
}
