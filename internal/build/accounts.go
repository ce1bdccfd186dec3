package build

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-project/kiln/internal/closure"
	"github.com/kiln-project/kiln/internal/layer"
	"github.com/kiln-project/kiln/internal/spec"
)

// addAccounts writes /etc/passwd and /etc/group when kiln.yaml declares accounts. Lines the base
// image already has are kept; root is added when nobody declared uid 0.
func addAccounts(sp *spec.Spec, c *collected, _ *closure.Resolver) error {
	a := sp.Accounts
	if len(a.Users) == 0 && len(a.Groups) == 0 {
		return nil
	}
	var first spec.Pos // the first account declared, for errors
	if len(a.Users) > 0 {
		first = a.Users[0].Pos
	} else {
		first = a.Groups[0].Pos
	}
	org := origin(sp, spec.Pos{Field: "accounts", Line: first.Line})
	passwd, group := passwdLines(c.basePasswd, a.Users), groupLines(c.baseGroup, a.Groups)
	c.add(layer.Entry{Path: "/etc/passwd", Kind: layer.Regular, Data: []byte(passwd), Mode: 0o644, Origin: org},
		layer.Entry{Path: "/etc/group", Kind: layer.Regular, Data: []byte(group), Mode: 0o644, Origin: org})
	for _, u := range a.Users {
		h := home(u)
		if h != "/" && h != "/nonexistent" {
			c.add(layer.Entry{Path: h, Kind: layer.Dir, Mode: 0o755, UID: u.UID, GID: u.GID, Origin: origin(sp, u.Pos)})
		}
	}
	return nil
}

func home(u spec.User) string {
	switch {
	case u.Home != "":
		return u.Home
	case u.UID == 0:
		return "/root"
	}
	return "/home/" + u.Name
}

// passwdLines appends the declared users to prev (the base image's file, possibly empty).
func passwdLines(prev string, users []spec.User) string {
	var b strings.Builder
	b.WriteString(prev)
	if prev == "" && !hasUID(users, 0) {
		b.WriteString("root:x:0:0:root:/root:/sbin/nologin\n")
	}
	for _, u := range users {
		shell := u.Shell
		if shell == "" {
			shell = "/sbin/nologin"
		}
		fmt.Fprintf(&b, "%s:x:%d:%d:%s:%s:%s\n", u.Name, u.UID, u.GID, u.Gecos, home(u), shell)
	}
	return b.String()
}

func groupLines(prev string, groups []spec.Group) string {
	var b strings.Builder
	b.WriteString(prev)
	if prev == "" && !hasGID(groups, 0) {
		b.WriteString("root:x:0:\n")
	}
	for _, g := range groups {
		fmt.Fprintf(&b, "%s:x:%d:%s\n", g.Name, g.GID, strings.Join(g.Members, ","))
	}
	return b.String()
}

func hasUID(users []spec.User, id int) bool {
	return slices.ContainsFunc(users, func(u spec.User) bool { return u.UID == id })
}

func hasGID(groups []spec.Group, id int) bool {
	return slices.ContainsFunc(groups, func(g spec.Group) bool { return g.GID == id })
}
