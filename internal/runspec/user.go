package runspec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Errors of ResolveUser, worded as Docker (runc's libcontainer/user) words them.
var (
	ErrNoPasswdEntries = errors.New("no matching entries in passwd file")
	ErrNoGroupEntries  = errors.New("no matching entries in group file")
	ErrIDRange         = errors.New("uids and gids must be in range 0-2147483647")
)

const maxID = 1<<31 - 1

type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

type groupEntry struct {
	name    string
	gid     int
	members []string
}

// ResolveUser applies Docker's rules for -u (and the image's User) to spec
// ("name", "uid", "name:group", "uid:gid", "" for root), against the
// /etc/passwd and /etc/group of the image whose unpacked layers are
// layerDirs (top first). It returns the user and their home directory ("/"
// when passwd has no entry).
//
//   - A user is found by name, or by uid when spec is numeric; a numeric uid
//     with no entry is used as is, with gid 0. An unknown name is an error.
//   - An explicit group sets the gid (by name, or a number used as is) and
//     is the only group: no supplementary groups, as in Docker.
//   - Without one, the gid is the passwd entry's, and the supplementary
//     groups are those of /etc/group that list the user's name.
//
// AdditionalGids always starts with the gid itself (as moby does), so the
// runtime always calls setgroups and nothing of its own groups leaks in.
func ResolveUser(spec string, layerDirs []string) (specs.User, string, error) {
	return resolveUserIn(spec, layerView(layerDirs))
}

// ResolveUserInRoot is ResolveUser against the /etc/passwd and /etc/group
// of a running container's root, such as /proc/PID/root. The container may
// change its files while kiln reads them: the kernel resolves each path
// inside root (see liveRoot), so a symlink swapped in never leads to the
// host's files.
func ResolveUserInRoot(spec, root string) (specs.User, string, error) {
	r, err := openLiveRoot(root)
	if err != nil {
		return specs.User{}, "", err
	}
	defer r.Close()
	return resolveUserIn(spec, r)
}

// imageFiles is where a user is looked up: readFile returns the content of
// the regular file at an absolute path of the image, or an error wrapping
// fs.ErrNotExist (or errNotDir) when there is none.
type imageFiles interface {
	readFile(name string) ([]byte, error)
}

func resolveUserIn(spec string, view imageFiles) (specs.User, string, error) {
	userArg, groupArg, _ := strings.Cut(spec, ":")
	if i := strings.IndexByte(groupArg, ':'); i >= 0 {
		groupArg = groupArg[:i] // Docker ignores fields past the second
	}
	uidArg, uidErr := strconv.Atoi(userArg)
	if userArg == "" {
		uidArg, uidErr = 0, nil // no user: root, looked up by uid
	}
	gidArg, gidErr := strconv.Atoi(groupArg)

	users, err := readPasswd(view)
	if err != nil {
		return specs.User{}, "", err
	}
	u := passwdEntry{home: "/"}
	matched := ""
	if e, ok := findUser(users, userArg, uidArg, uidErr == nil); ok {
		u, matched = e, e.name
	} else if uidErr != nil {
		return specs.User{}, "", fmt.Errorf("unable to find user %s: %w", userArg, ErrNoPasswdEntries)
	} else if uidArg < 0 || uidArg > maxID {
		return specs.User{}, "", ErrIDRange
	} else {
		u.uid = uidArg
	}

	var sgids []int
	if groupArg != "" || matched != "" {
		groups, err := readGroup(view)
		if err != nil {
			return specs.User{}, "", err
		}
		switch {
		case groupArg == "":
			for _, g := range groups {
				if slices.Contains(g.members, matched) {
					sgids = append(sgids, g.gid)
				}
			}
		default:
			g, ok := findGroup(groups, groupArg, gidArg, gidErr == nil)
			switch {
			case ok:
				u.gid = g.gid
			case gidErr != nil:
				return specs.User{}, "", fmt.Errorf("unable to find group %s: %w", groupArg, ErrNoGroupEntries)
			case gidArg < 0 || gidArg > maxID:
				return specs.User{}, "", ErrIDRange
			default:
				u.gid = gidArg
			}
		}
	}

	out := specs.User{UID: uint32(u.uid), GID: uint32(u.gid), AdditionalGids: []uint32{uint32(u.gid)}}
	for _, g := range sgids {
		if !slices.Contains(out.AdditionalGids, uint32(g)) {
			out.AdditionalGids = append(out.AdditionalGids, uint32(g))
		}
	}
	home := u.home
	if home == "" {
		home = "/"
	}
	return out, home, nil
}

// findUser returns the first entry named name, or with uid when numeric.
func findUser(users []passwdEntry, name string, uid int, numeric bool) (passwdEntry, bool) {
	for _, u := range users {
		if numeric && u.uid == uid || !numeric && u.name == name {
			return u, true
		}
	}
	return passwdEntry{}, false
}

// findGroup returns the first entry named name, or with gid when numeric.
func findGroup(groups []groupEntry, name string, gid int, numeric bool) (groupEntry, bool) {
	for _, g := range groups {
		if numeric && g.gid == gid || !numeric && g.name == name {
			return g, true
		}
	}
	return groupEntry{}, false
}

// readPasswd parses the image's /etc/passwd; an image without one has no
// entries (numeric users still work, as in Docker).
func readPasswd(view imageFiles) ([]passwdEntry, error) {
	var out []passwdEntry
	err := readColonFile(view, "/etc/passwd", func(f []string) {
		// name:password:uid:gid:gecos:home:shell
		if len(f) < 4 {
			return
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return // "+" NIS lines and garbage: not a user
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	})
	return out, err
}

// readGroup parses the image's /etc/group.
func readGroup(view imageFiles) ([]groupEntry, error) {
	var out []groupEntry
	err := readColonFile(view, "/etc/group", func(f []string) {
		// name:password:gid:member,member
		if len(f) < 3 {
			return
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			return
		}
		e := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					e.members = append(e.members, m)
				}
			}
		}
		out = append(out, e)
	})
	return out, err
}

// readColonFile calls line with the ':'-separated fields of each non-empty,
// non-comment line of the image file name; a missing file has no lines.
func readColonFile(view imageFiles, name string, line func([]string)) error {
	data, err := view.readFile(name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
		return nil // as runc: a passwd that cannot be opened is no passwd
	}
	if err != nil {
		return fmt.Errorf("read %s of the image: %w", name, err)
	}
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(nil, maxImageFile)
	for s.Scan() {
		l := strings.TrimSpace(s.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		line(strings.Split(l, ":"))
	}
	return s.Err()
}
