package spec

import (
	"io/fs"
	"strings"
)

// Spec is a parsed and validated kiln.yaml.
type Spec struct {
	File string // path of the kiln.yaml it came from, as given
	Dir  string // build directory: relative sources resolve here (absolute)

	Name     string
	Tag      string // default "latest"
	Base     Base
	Contents Contents
	Accounts Accounts
	Config   Config
	Steps    []Step

	// Squash folds the finished image into one layer (layers: squash).
	Squash bool
	// Stage is the name of a stage under stages:, "" for the image kiln.yaml builds.
	Stage string
	// Stages are the images built first, for base or contents ...from: to use: each listed before
	// any stage that uses it. Set on the top level only; a stage has neither name nor tag.
	Stages []*Spec
}

// Pos is where a value was written in kiln.yaml, for errors.
type Pos struct {
	Line  int
	Field string // e.g. "contents.files[1]"
}

// Base is the image to start from.
type Base struct {
	Pos
	Ref   string // "scratch" (or empty), an image in the store, a stage, or a path to an archive or OCI layout
	Stage bool   // Ref names a stage of this kiln.yaml
}

// Scratch reports whether the image starts empty.
func (b Base) Scratch() bool { return b.Ref == "" || b.Ref == "scratch" }

// Contents lists what goes into the image's contents layer.
type Contents struct {
	Binaries     []Binary
	Files        []File
	Trees        []Tree
	Symlinks     []Symlink
	Dirs         []Dir
	Certificates bool
	NSS          bool
	Timezone     string // "" none, "all" for timezone: true, or a zone name such as "Europe/Paris"
	TimezonePos  Pos
}

// Binary is a host executable copied with its shared-library closure.
type Binary struct {
	Pos
	Src  string // absolute host path, a path relative to Dir, or a bare name looked up in PATH
	Dst  string // path in the image; default: Src when absolute (after PATH lookup), else /usr/local/bin/<base>
	From string // a stage: Src is a path (or a name in PATH) in that stage's image, not on the host
}

// File is one file copied from the host.
type File struct {
	Pos
	Src  string
	Dst  string
	From string       // a stage: Src is a path in that stage's image, not on the host
	Mode *fs.FileMode // nil: the source's permission bits
	UID  int
	GID  int
}

// Tree is a directory copied recursively; symlinks inside it are kept as symlinks.
type Tree struct {
	Pos
	Src  string
	Dst  string
	From string // a stage: Src is a path in that stage's image, not on the host
	UID  int
	GID  int
}

// Symlink is a symbolic link created in the image.
type Symlink struct {
	Pos
	Path   string
	Target string
}

// Dir is a directory created in the image.
type Dir struct {
	Pos
	Path string
	Mode fs.FileMode // default 0755; may include fs.ModeSticky, ModeSetgid
	UID  int
	GID  int
}

// Accounts are written to /etc/passwd and /etc/group.
type Accounts struct {
	Users    []User
	Groups   []Group
	RunAs    string // user name or uid[:gid]; becomes the config's User unless config.user is set
	RunAsPos Pos
}

// User is a line of /etc/passwd.
type User struct {
	Pos
	Name  string
	UID   int
	GID   int    // default: the group with the same name, else UID
	Home  string // default "/home/<name>", "/root" for root
	Shell string // default "/sbin/nologin"
	Gecos string
}

// Group is a line of /etc/group.
type Group struct {
	Pos
	Name    string
	GID     int
	Members []string
}

// Config is written to the OCI image config.
type Config struct {
	Entrypoint []string
	Cmd        []string
	Env        []string // "NAME=value", in the order written
	WorkingDir string
	User       string
	Ports      []string // normalised "80/tcp"
	Volumes    []string
	Labels     map[string]string
	StopSignal string // normalised "SIGTERM"
}

// IsPath reports whether Ref names an archive or OCI layout on disk rather than an image in the
// store: it starts with "/", "./" or "../", or ends in .tar, .tar.gz or .tgz.
func (b Base) IsPath() bool {
	r := b.Ref
	for _, p := range []string{"/", "./", "../"} {
		if strings.HasPrefix(r, p) {
			return true
		}
	}
	for _, s := range []string{".tar", ".tar.gz", ".tgz"} {
		if strings.HasSuffix(r, s) {
			return true
		}
	}
	return false
}

// Step is a command run inside a container on the image built so far; what it changes in the
// root filesystem (the build directory aside) becomes one layer.
type Step struct {
	Pos
	Run     []string // argv; a string in kiln.yaml is ["/bin/sh", "-c", string]
	Env     []string // "NAME=value", merged over the image's environment
	Workdir string   // "": the build directory (BuildDir)
	User    string   // "": the base image's user
	Network string   // "none" (default) or "host"
	Copy    bool     // the build directory is a writable copy instead of a read-only bind
}

// BuildDir is where a step sees the build directory.
const BuildDir = "/build"
