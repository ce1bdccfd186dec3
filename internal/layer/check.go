package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// UnsafeError reports a layer entry that could write outside the root, or
// that Check and Extract do not accept.
type UnsafeError struct {
	Path   string // the entry's name as written in the tar
	Reason string
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("unsafe layer entry %q: %s", e.Path, e.Reason)
}

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// Check reads an uncompressed tar from untrusted hands to its end and returns
// an *UnsafeError for the first entry that:
//
//   - has an absolute name, or one whose ".." components climb above the root
//     ("./a/../b" is fine);
//   - is a hardlink to a target outside the root, to a directory or a
//     whiteout, or to something not earlier in the layer (a leading "/" in a hardlink
//     target means the layer root);
//   - is a symlink whose relative target climbs above the root, lexically,
//     from the link's directory (absolute targets resolve inside the image);
//   - has a name (or hardlink target) that goes through a symlink made earlier
//     in the same layer ("link -> /etc", then "link/passwd");
//   - is a whiteout of nothing (".wh.", ".wh..."), or a non-directory root;
//   - has a type other than file, hardlink, symlink, directory, device or fifo.
//
// A tar that ends before its end-of-archive block is truncated: the error
// wraps io.ErrUnexpectedEOF. File contents are streamed, never buffered.
func Check(r io.Reader) error {
	lr := newLayerReader(r)
	var c checker
	for {
		hdr, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := c.entry(hdr); err != nil && err != errSkip {
			return err
		}
	}
}

// errSkip marks an entry that carries no file (a PAX global header).
var errSkip = errors.New("skip entry")

// checker holds what the rules of Check need to remember between entries.
type checker struct {
	seen map[string]byte // clean relative name -> type flag of its latest entry
}

// entry checks hdr and records it. It returns the clean relative name ("."
// for the root), errSkip, or an *UnsafeError.
func (c *checker) entry(hdr *tar.Header) (string, error) {
	if c.seen == nil {
		c.seen = make(map[string]byte)
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return "", errSkip
	}
	unsafe := func(format string, args ...any) (string, error) {
		return "", &UnsafeError{Path: hdr.Name, Reason: fmt.Sprintf(format, args...)}
	}
	if !knownType(hdr.Typeflag) {
		return unsafe("unsupported entry type %q", hdr.Typeflag)
	}
	name, reason := relative(hdr.Name)
	if reason != "" {
		return unsafe("%s", reason)
	}
	if link := c.throughSymlink(name); link != "" {
		return unsafe("path goes through symlink %q made earlier in the layer", link)
	}
	if name == "." && hdr.Typeflag != tar.TypeDir {
		return unsafe("the root must be a directory")
	}
	if reason := checkWhiteout(name); reason != "" {
		return unsafe("%s", reason)
	}
	switch hdr.Typeflag {
	case tar.TypeLink:
		if reason := c.checkHardlink(name, hdr.Linkname); reason != "" {
			return unsafe("%s", reason)
		}
	case tar.TypeSymlink:
		if reason := checkSymlink(name, hdr.Linkname); reason != "" {
			return unsafe("%s", reason)
		}
	}
	c.seen[name] = hdr.Typeflag
	return name, nil
}

func knownType(flag byte) bool {
	switch flag {
	case tar.TypeReg, tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return true
	}
	return false
}

// relative cleans a tar name into a path relative to the root, or says why
// it cannot.
func relative(name string) (string, string) {
	switch {
	case name == "":
		return "", "empty name"
	case strings.HasPrefix(name, "/"):
		return "", "absolute path"
	}
	clean := path.Clean(name)
	if escapes(clean) {
		return "", "path escapes the root"
	}
	return clean, ""
}

func escapes(clean string) bool {
	return clean == ".." || strings.HasPrefix(clean, "../")
}

// throughSymlink returns the first proper ancestor of name that an earlier
// entry made a symlink, or "".
func (c *checker) throughSymlink(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] == '/' && c.seen[name[:i]] == tar.TypeSymlink {
			return name[:i]
		}
	}
	return ""
}

func checkWhiteout(name string) string {
	base := path.Base(name)
	if !strings.HasPrefix(base, whiteoutPrefix) || base == opaqueMarker {
		return ""
	}
	switch strings.TrimPrefix(base, whiteoutPrefix) {
	case "", ".", "..":
		return "whiteout of nothing"
	}
	return ""
}

func (c *checker) checkHardlink(name, target string) string {
	if target == "" {
		return "hardlink without a target"
	}
	clean := path.Clean(strings.TrimLeft(target, "/"))
	switch {
	case escapes(clean):
		return fmt.Sprintf("hardlink target %q escapes the root", target)
	case clean == ".":
		return "hardlink to the root"
	case clean == name:
		return "hardlink to itself"
	case strings.HasPrefix(path.Base(clean), whiteoutPrefix):
		return fmt.Sprintf("hardlink to whiteout %q", target)
	case c.throughSymlink(clean) != "":
		return fmt.Sprintf("hardlink target %q goes through symlink %q made earlier in the layer",
			target, c.throughSymlink(clean))
	}
	switch flag, ok := c.seen[clean]; {
	case !ok:
		return fmt.Sprintf("hardlink target %q is not earlier in the layer", target)
	case flag == tar.TypeDir:
		return fmt.Sprintf("hardlink to directory %q", target)
	}
	return ""
}

func checkSymlink(name, target string) string {
	switch {
	case target == "":
		return "symlink without a target"
	case path.IsAbs(target):
		return ""
	case escapes(path.Join(path.Dir(name), target)):
		return fmt.Sprintf("symlink target %q climbs above the root", target)
	}
	return ""
}
