package spec

import (
	"errors"
	"fmt"
	"github.com/google/go-containerregistry/pkg/name"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// imagePath checks a path inside the image: absolute, and no ".." climbing above "/".
// It returns the path cleaned.
func imagePath(s string) (string, error) {
	switch {
	case s == "":
		return "", errors.New("must not be empty")
	case !strings.HasPrefix(s, "/"):
		return "", fmt.Errorf("%q is not absolute", s)
	}
	depth := 0
	for _, c := range strings.Split(s, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
		default:
			depth++
		}
		if depth < 0 {
			return "", fmt.Errorf("%q climbs above /", s)
		}
	}
	return path.Clean(s), nil
}

// imagePath reads a path inside the image; notRoot rejects "/" itself (a file cannot be /).
func (p *parser) imagePath(n *yaml.Node, field string, notRoot bool) string {
	s, ok := p.str(n, field)
	if !ok {
		return ""
	}
	clean, err := imagePath(s)
	if err == nil && notRoot && clean == "/" {
		err = errors.New(`must not be "/"`)
	}
	p.check(n, field, err)
	return clean
}

// srcKind is what a source on the host must be.
type srcKind int

const (
	anyKind  srcKind = iota // a file or a directory (a base archive or layout)
	fileKind                // a regular file, after symlinks
	execKind                // a regular file with an execute bit
	dirKind                 // a directory
)

// src reads a host path, resolves it against the build directory, and checks it exists.
func (p *parser) src(n *yaml.Node, field string, want srcKind) string {
	s, ok := p.text(n, field)
	if !ok {
		return ""
	}
	abs := s
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(p.buildDir, abs)
	}
	abs = filepath.Clean(abs)
	if err := statSrc(abs, want); err != nil {
		p.failf(n, field, "%s: %w", show(s), err)
	}
	return abs
}

// statSrc is the only place spec looks at the host beyond kiln.yaml.
func statSrc(name string, want srcKind) error {
	fi, err := os.Stat(name)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err // "no such file or directory"; the caller names the path as written
	}
	if err != nil {
		return err
	}
	switch {
	case want == anyKind:
	case want == dirKind && !fi.IsDir():
		return errors.New("not a directory")
	case want == dirKind:
	case fi.IsDir():
		return errors.New("is a directory")
	case !fi.Mode().IsRegular():
		return errors.New("not a regular file")
	case want == execKind && fi.Mode().Perm()&0o111 == 0:
		return errors.New("not executable")
	}
	return nil
}

// parseMode reads octal permission bits the way chmod does: "644", "0644", "0o644",
// up to 07777, with 04000 setuid, 02000 setgid and 01000 sticky.
func parseMode(s string) (fs.FileMode, error) {
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	v, err := strconv.ParseUint(digits, 8, 32)
	if err != nil || v > 0o7777 {
		return 0, fmt.Errorf("want an octal mode such as 0644, got %q", s)
	}
	m := fs.FileMode(v & 0o777)
	for bit, flag := range map[uint64]fs.FileMode{0o4000: fs.ModeSetuid, 0o2000: fs.ModeSetgid, 0o1000: fs.ModeSticky} {
		if v&bit != 0 {
			m |= flag
		}
	}
	return m, nil
}

func (p *parser) mode(n *yaml.Node, field string) fs.FileMode {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!str") {
		p.wrongType(n, field, "an octal mode such as 0644")
		return 0
	}
	m, err := parseMode(n.Value)
	p.check(n, field, err)
	return m
}

var (
	// nameRE is a Docker repository name without a registry port: lower-case components
	// separated by "/", each made of alphanumeric runs joined by ".", "_", "__" or dashes.
	nameRE = lazyRegexp(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = lazyRegexp(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	// digestRE is a full image digest; a short prefix could become ambiguous as the store grows.
	digestRE = lazyRegexp(`^sha256:[0-9a-f]{64}$`)
)

const maxNameLen = 255

func checkName(s string) error {
	if len(s) > maxNameLen || !nameRE().MatchString(s) {
		return fmt.Errorf("%q is not a valid image name (lower-case letters, digits, and . _ - between them; / between components)", s)
	}
	return nil
}

func checkTag(s string) error {
	if !tagRE().MatchString(s) {
		return fmt.Errorf("%q is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 characters)", s)
	}
	return nil
}

// checkStoreRef checks "name", "name:tag" or "sha256:<64 hex>", or a registry reference
// ("host[:port]/repo[:tag]", "repo@sha256:..."), which kiln pulls when the store lacks it.
func checkStoreRef(s string) error {
	if isRegistryRef(s) {
		if _, err := name.ParseReference(s); err != nil {
			return fmt.Errorf("%q is not a valid image reference: %w", s, err)
		}
		return nil
	}
	if strings.HasPrefix(s, "sha256:") {
		if !digestRE().MatchString(s) {
			return fmt.Errorf("%q is not a sha256 digest (sha256: and 64 lower-case hex digits)", s)
		}
		return nil
	}
	name, tag, hasTag := strings.Cut(s, ":")
	if err := checkName(name); err != nil {
		return err
	}
	if hasTag {
		return checkTag(tag)
	}
	return nil
}

// accountRE is a user or group name that /etc/passwd and /etc/group can hold and
// shadow-utils accepts.
var accountRE = lazyRegexp(`^[A-Za-z_][A-Za-z0-9_.-]{0,30}\$?$`)

func checkAccountName(s string) error {
	if !accountRE().MatchString(s) {
		return fmt.Errorf("%q is not a valid account name ([A-Za-z_][A-Za-z0-9_.-]*, at most 32 characters)", s)
	}
	return nil
}

// zoneRE is an IANA time zone name: "UTC", "Europe/Paris", "Etc/GMT+5".
var zoneRE = lazyRegexp(`^[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*$`)

func checkZone(s string) error {
	switch {
	case strings.HasPrefix(s, "/"):
		return fmt.Errorf("%q is not a zone name: it must not be absolute", s)
	case strings.Contains(s, ".."):
		return fmt.Errorf("%q is not a zone name: it must not contain \"..\"", s)
	case !zoneRE().MatchString(s):
		return fmt.Errorf("%q is not a zone name such as Europe/Paris", s)
	}
	return nil
}

// isRegistryRef reports whether s names a registry (its first component is a host: it has a dot
// or a port, or is localhost) or pins a digest with "@".
func isRegistryRef(s string) bool {
	if strings.Contains(s, "@") {
		return true
	}
	first, _, hasSlash := strings.Cut(s, "/")
	return hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost")
}
