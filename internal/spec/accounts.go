package spec

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

func (p *parser) accounts(n *yaml.Node, field string) Accounts {
	var a Accounts
	m, ok := p.mapping(n, field, "groups", "users", "run-as")
	if !ok {
		return a
	}
	groups := newUniques("group")
	p.each(m, "groups", func(n *yaml.Node, at Pos) { a.Groups = append(a.Groups, p.group(n, at, groups)) })
	users := newUniques("user")
	p.each(m, "users", func(n *yaml.Node, at Pos) { a.Users = append(a.Users, p.user(n, at, users, a.Groups)) })
	if v := m.get("run-as"); v != nil {
		a.RunAsPos = Pos{Line: v.Line, Field: m.path("run-as")}
		a.RunAs = p.runAs(v, a.RunAsPos.Field, a.Users)
	}
	return a
}

// uniques remembers the names and ids of accounts already read, with their lines.
type uniques struct {
	what  string // "user", "group"
	names map[string]int
	ids   map[int]int
}

func newUniques(what string) *uniques {
	return &uniques{what: what, names: map[string]int{}, ids: map[int]int{}}
}

func (p *parser) uniqueName(u *uniques, n *yaml.Node, field, name string) {
	if first, dup := u.names[name]; dup {
		p.failf(n, field, "duplicate %s name %q (first at line %d)", u.what, name, first)
		return
	}
	u.names[name] = n.Line
}

func (p *parser) uniqueID(u *uniques, n *yaml.Node, field string, id int) {
	if first, dup := u.ids[id]; dup {
		p.failf(n, field, "duplicate %s id %d (first at line %d)", u.what, id, first)
		return
	}
	u.ids[id] = n.Line
}

// accountName reads a user or group name and checks it is new.
func (p *parser) accountName(m mapping, u *uniques) string {
	v := p.required(m, "name")
	if v == nil {
		return ""
	}
	name, ok := p.str(v, m.path("name"))
	if ok && p.check(v, m.path("name"), checkAccountName(name)) {
		p.uniqueName(u, v, m.path("name"), name)
	}
	return name
}

// accountID reads a uid or gid and checks it is new.
func (p *parser) accountID(m mapping, key string, u *uniques) int {
	v := p.required(m, key)
	if v == nil {
		return 0
	}
	id := p.id(v, m.path(key))
	p.uniqueID(u, v, m.path(key), id)
	return id
}

func (p *parser) group(n *yaml.Node, at Pos, seen *uniques) Group {
	g := Group{Pos: at}
	m, ok := p.mapping(n, at.Field, "name", "gid", "members")
	if !ok {
		return g
	}
	g.Name = p.accountName(m, seen)
	g.GID = p.accountID(m, "gid", seen)
	members := map[string]int{}
	p.each(m, "members", func(n *yaml.Node, at Pos) {
		name, ok := p.str(n, at.Field)
		if !ok || !p.check(n, at.Field, checkAccountName(name)) {
			return
		}
		if first, dup := members[name]; dup {
			p.failf(n, at.Field, "duplicate member %q (first at line %d)", name, first)
			return
		}
		members[name] = n.Line
		g.Members = append(g.Members, name)
	})
	return g
}

var userKeys = []string{"name", "uid", "gid", "home", "shell", "gecos"}

func (p *parser) user(n *yaml.Node, at Pos, seen *uniques, groups []Group) User {
	u := User{Pos: at}
	m, ok := p.mapping(n, at.Field, userKeys...)
	if !ok {
		return u
	}
	u.Name = p.accountName(m, seen)
	u.UID = p.accountID(m, "uid", seen)
	u.GID = defaultGID(u, groups)
	if v := m.get("gid"); v != nil {
		u.GID = p.id(v, m.path("gid"))
	}
	u.Home = defaultHome(u)
	if v := m.get("home"); v != nil {
		u.Home = p.imagePath(v, m.path("home"), false)
	}
	u.Shell = "/sbin/nologin"
	if v := m.get("shell"); v != nil {
		u.Shell = p.imagePath(v, m.path("shell"), true)
	}
	if v := m.get("gecos"); v != nil {
		u.Gecos = p.gecos(v, m.path("gecos"))
	}
	return u
}

// defaultGID is the gid of the group named like the user, else the uid.
func defaultGID(u User, groups []Group) int {
	for _, g := range groups {
		if g.Name == u.Name {
			return g.GID
		}
	}
	return u.UID
}

func defaultHome(u User) string {
	if u.UID == 0 {
		return "/root"
	}
	return "/home/" + u.Name
}

// gecos reads the comment field of /etc/passwd, which cannot hold a ":" or a line break.
func (p *parser) gecos(n *yaml.Node, field string) string {
	s, ok := p.str(n, field)
	if ok && strings.ContainsAny(s, ":\n\r\x00") {
		p.failf(n, field, "must not contain \":\", a line break or NUL")
	}
	return s
}

var numericUser = lazyRegexp(`^([0-9]+)(?::([0-9]+))?$`)

// runAs reads a declared user's name or uid[:gid].
func (p *parser) runAs(n *yaml.Node, field string, users []User) string {
	s, ok := p.text(n, field)
	if !ok {
		return ""
	}
	if m := numericUser().FindStringSubmatch(s); m != nil {
		for _, id := range m[1:] {
			if v, err := strconv.ParseInt(id, 10, 64); id != "" && (err != nil || v > maxID) {
				p.failf(n, field, "%s is out of range 0..%d", id, maxID)
			}
		}
		return s
	}
	if lookupUser(users, s) == nil {
		p.failf(n, field, "%q is not a declared user (declare it in accounts.users, or write uid[:gid])", s)
	}
	return s
}

func lookupUser(users []User, name string) *User {
	for i := range users {
		if users[i].Name == name {
			return &users[i]
		}
	}
	return nil
}

// runAsUser is the image's user when config.user is not set: run-as as numbers,
// because Kubernetes can only check runAsNonRoot against a numeric user.
func runAsUser(a Accounts) string {
	if u := lookupUser(a.Users, a.RunAs); u != nil {
		return fmt.Sprintf("%d:%d", u.UID, u.GID)
	}
	return a.RunAs
}
