package runspec

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultPath is the PATH a container gets when the image sets none (Docker's).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// environ is an environment under construction: one value per name, in the
// order names were first set.
type environ struct {
	names  []string
	values map[string]string
}

func newEnviron() *environ { return &environ{values: map[string]string{}} }

func (e *environ) set(name, value string) {
	if _, ok := e.values[name]; !ok {
		e.names = append(e.names, name)
	}
	e.values[name] = value
}

func (e *environ) unset(name string) {
	if _, ok := e.values[name]; !ok {
		return
	}
	delete(e.values, name)
	for i, n := range e.names {
		if n == name {
			e.names = append(e.names[:i], e.names[i+1:]...)
			break
		}
	}
}

func (e *environ) has(name string) bool { _, ok := e.values[name]; return ok }

// apply sets "NAME=VALUE"; a bare "NAME" unsets NAME (Docker's rule for an
// entry without "=").
func (e *environ) apply(kv string) {
	if name, value, ok := strings.Cut(kv, "="); ok {
		e.set(name, value)
	} else {
		e.unset(kv)
	}
}

func (e *environ) list() []string {
	out := make([]string, 0, len(e.names))
	for _, n := range e.names {
		out = append(out, n+"="+e.values[n])
	}
	return out
}

// envInput is what the process environment is made of.
type envInput struct {
	image    []string
	files    []string
	flags    []string
	hostEnv  func(string) (string, bool)
	hostname string
	terminal bool
	home     string
}

// buildEnv applies Docker's rules: PATH (DefaultPath), HOSTNAME and, with a
// terminal, TERM=xterm are defaults; the image's env overrides them, then the
// --env-file files in order, then -e in order: the last value of a name wins.
// "-e NAME" takes NAME from the host environment, and unsets NAME when the
// host has none (as Docker does). HOME is the user's home unless set.
func buildEnv(in envInput) ([]string, error) {
	env := newEnviron()
	env.set("PATH", DefaultPath)
	env.set("HOSTNAME", in.hostname)
	if in.terminal {
		env.set("TERM", "xterm")
	}
	for _, kv := range in.image {
		env.apply(kv)
	}
	for _, f := range in.files {
		kvs, err := ReadEnvFile(f, in.hostEnv)
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			env.apply(kv)
		}
	}
	for _, kv := range in.flags {
		name, _, hasValue := strings.Cut(kv, "=")
		if name == "" {
			return nil, fmt.Errorf("-e %s: invalid environment variable", kv)
		}
		if strings.IndexByte(kv, 0) >= 0 {
			return nil, fmt.Errorf("-e %q: contains a NUL byte", kv)
		}
		if !hasValue {
			if v, ok := lookupHost(in.hostEnv, name); ok {
				kv = name + "=" + v
			}
		}
		env.apply(kv)
	}
	if !env.has("HOME") {
		env.set("HOME", in.home)
	}
	return env.list(), nil
}

func lookupHost(hostEnv func(string) (string, bool), name string) (string, bool) {
	if hostEnv == nil {
		return "", false
	}
	return hostEnv(name)
}

// ReadEnvFile reads a file in the format of `docker run --env-file`: one
// NAME=VALUE a line, the value taken verbatim (no quotes, no trimming);
// blank lines and lines starting with "#" (after leading white space) are
// skipped; a line with NAME alone takes its value from hostEnv and is left
// out when hostEnv has none. Errors name the file and the line.
func ReadEnvFile(name string, hostEnv func(string) (string, bool)) ([]string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	return parseEnvFile(name, data, hostEnv)
}

func parseEnvFile(name string, data []byte, hostEnv func(string) (string, bool)) ([]string, error) {
	var out []string
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(nil, 1<<20)
	n := 0
	for s.Scan() {
		n++
		b := s.Bytes()
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
		}
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("%s:%d: invalid UTF-8", name, n)
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return nil, fmt.Errorf("%s:%d: contains a NUL byte", name, n)
		}
		line := strings.TrimLeftFunc(string(b), unicode.IsSpace)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, hasValue := strings.Cut(line, "=")
		switch {
		case strings.ContainsAny(key, " \t"):
			return nil, fmt.Errorf("%s:%d: variable %q contains white space", name, n, key)
		case key == "":
			return nil, fmt.Errorf("%s:%d: no variable name in %q", name, n, line)
		case hasValue:
			out = append(out, key+"="+value)
		default:
			if v, ok := lookupHost(hostEnv, key); ok {
				out = append(out, key+"="+v)
			}
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, n+1, err)
	}
	return out, nil
}
