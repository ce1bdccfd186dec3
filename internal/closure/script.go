package closure

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

const (
	// maxInterpDepth is the kernel's limit on nested #! interpreters (BINPRM_MAX_RECURSION).
	maxInterpDepth = 4
	// maxShebang is how much of a file the kernel reads to find the #! line (BINPRM_BUF_SIZE).
	maxShebang = 256
)

// executable adds p, an ELF program or a #! script, and everything it needs.
func (r *Resolver) executable(c *collector, p, origin string, depth int) error {
	if c.done[p] {
		return nil
	}
	c.done[p] = true
	if depth > maxInterpDepth {
		return fmt.Errorf("closure: %s: interpreters nested more than %d deep", p, maxInterpDepth)
	}
	real, err := r.addPath(c, p, origin)
	if err != nil {
		return err
	}
	obj, err := r.object(real)
	switch {
	case err == nil:
		return r.loadELF(c, p, real, obj, depth)
	case errors.Is(err, errNotELF):
		return r.script(c, p, real, depth)
	}
	return fmt.Errorf("closure: read %s: %w", p, err)
}

// script adds the interpreter of the #! script p (whose file is real) and, when that interpreter
// is env, the program env runs.
func (r *Resolver) script(c *collector, p, real string, depth int) error {
	head, err := r.readHead(real)
	if err != nil {
		return fmt.Errorf("closure: read %s: %w", p, err)
	}
	interp, arg, ok := parseShebang(head)
	switch {
	case !ok:
		return fmt.Errorf("closure: %s: not an executable: neither ELF nor #! script", p)
	case !path.IsAbs(interp):
		// The kernel would resolve it against the caller's working directory, unknowable here.
		return fmt.Errorf("closure: %s: #! interpreter %q is not an absolute path", p, interp)
	}
	if err := r.executable(c, interp, "interpreter of "+p, depth+1); err != nil {
		return err
	}
	if path.Base(interp) != "env" {
		return nil
	}
	prog := envProgram(arg)
	if prog == "" {
		return nil
	}
	found, err := r.lookup(prog)
	if err != nil {
		return fmt.Errorf("closure: %s: #!%s %s: %w", p, interp, arg, err)
	}
	return r.executable(c, found, "run by #!"+interp+" in "+p, 0)
}

func (r *Resolver) readHead(real string) ([]byte, error) {
	f, err := r.dir.open(real)
	if err != nil {
		return nil, renamePathError(err, real)
	}
	defer f.Close()
	buf := make([]byte, maxShebang)
	n, err := io.ReadFull(f, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return buf[:n], renamePathError(err, real)
}

// parseShebang splits a #! line as the kernel does: the interpreter is the first word, and the rest
// of the line, trimmed, is passed as one argument however many words it has.
func parseShebang(head []byte) (interp, arg string, ok bool) {
	line, found := bytes.CutPrefix(head, []byte("#!"))
	if !found {
		return "", "", false
	}
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	s := strings.Trim(string(line), " \t")
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], strings.Trim(s[i:], " \t"), true
	}
	return s, "", true
}

// envProgram returns the program env(1) runs when a #! line gives it arg. The kernel passes all of
// arg as one argument, so "python3 -u" names a program that does not exist unless env is told to
// split it with -S ("#!/usr/bin/env -S python3 -u"). Options and NAME=VALUE assignments are
// skipped; -S splits on blanks only (env's quoting and ${VAR} are not interpreted).
func envProgram(arg string) string {
	rest := []string{arg}
	options := true // env stops parsing options at the first operand, as getopt does with "+"
	for len(rest) > 0 {
		a := rest[0]
		rest = rest[1:]
		switch {
		case a == "":
			return ""
		case options && a == "--":
			options = false
		case options && a == "-":
			// the same as -i
		case options && strings.HasPrefix(a, "--"):
			rest = envLongOption(a[2:], rest)
		case options && a[0] == '-':
			rest = envShortOptions(a[1:], rest)
		case strings.Contains(a, "="):
			options = false // NAME=VALUE
		default:
			return a
		}
	}
	return ""
}

// envArgOptions are env's options that take an argument, long and short.
var envArgOptions = map[string]bool{
	"split-string": true, "unset": true, "chdir": true, "argv0": true,
	"S": true, "u": true, "C": true, "a": true,
}

// envLongOption consumes the option --name[=value] (and a separate value) and returns what follows.
func envLongOption(opt string, rest []string) []string {
	name, val, hasVal := strings.Cut(opt, "=")
	if !envArgOptions[name] {
		return rest
	}
	if !hasVal && len(rest) > 0 {
		val, rest = rest[0], rest[1:]
	}
	if name == "split-string" {
		return append(strings.Fields(val), rest...)
	}
	return rest
}

// envShortOptions consumes a cluster of short options like "iS" and returns what follows.
func envShortOptions(opts string, rest []string) []string {
	for j := 0; j < len(opts); j++ {
		if !envArgOptions[opts[j:j+1]] {
			continue
		}
		val := opts[j+1:]
		if val == "" && len(rest) > 0 {
			val, rest = rest[0], rest[1:]
		}
		if opts[j] == 'S' {
			return append(strings.Fields(val), rest...)
		}
		return rest
	}
	return rest
}

// Lookup returns the path at which the image's PATH (r.PATH) finds the program name: the first
// directory holding an executable regular file of that name, symlinks followed inside the root. The
// path is returned as found, not resolved; Resolve it to get the symlinks too. A name with a slash
// must be absolute and is checked, not searched. A missing program is an error wrapping
// fs.ErrNotExist.
func (r *Resolver) Lookup(name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := r.lookup(name)
	if err != nil {
		return "", fmt.Errorf("closure: %w", err)
	}
	return p, nil
}

func (r *Resolver) lookup(name string) (string, error) {
	switch {
	case path.IsAbs(name):
		if !r.isExecutable(name) {
			return "", fmt.Errorf("lookup %s: no executable file there: %w", name, fs.ErrNotExist)
		}
		return path.Clean(name), nil
	case name == "" || strings.Contains(name, "/"):
		return "", fmt.Errorf("lookup %q: not a program name or absolute path", name)
	}
	for _, d := range r.PATH {
		if !path.IsAbs(d) {
			continue // a relative PATH entry depends on the working directory
		}
		if p := path.Join(d, name); r.isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("lookup %s: not found in PATH %s: %w", name, strings.Join(r.PATH, ":"), fs.ErrNotExist)
}

func (r *Resolver) isExecutable(p string) bool {
	_, real, err := r.walk(p)
	if err != nil {
		return false
	}
	m := r.lstat(real).mode
	return m.IsRegular() && m&0o111 != 0
}
