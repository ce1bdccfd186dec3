package store

import (
	"fmt"
	"strings"
)

// The grammar of docker references, without digests: a name is
// slash-separated lowercase components, the first of which may be a
// registry host with a port.
var (
	nameComponent = lazyRegexp(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	hostPort      = lazyRegexp(`^[a-z0-9]+(?:[.-][a-z0-9]+)*:[0-9]+$`)
	tagPattern    = lazyRegexp(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

const maxNameLen = 255

// normalizeRef validates "name" or "name:tag" and returns "name:tag", with
// tag "latest" when none is given.
func normalizeRef(ref string) (string, error) {
	name, tag := splitRef(ref)
	if err := checkName(name); err != nil {
		return "", fmt.Errorf("invalid reference %q: %w", ref, err)
	}
	if !tagPattern().MatchString(tag) {
		return "", fmt.Errorf("invalid reference %q: tag %q: want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", ref, tag)
	}
	return name + ":" + tag, nil
}

// splitRef splits at the last colon unless it belongs to a host:port.
func splitRef(ref string) (name, tag string) {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i+1:], "/") {
		return ref, "latest"
	}
	return ref[:i], ref[i+1:]
}

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("name longer than %d characters", maxNameLen)
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		if nameComponent().MatchString(p) || (i == 0 && len(parts) > 1 && hostPort().MatchString(p)) {
			continue
		}
		return fmt.Errorf("name component %q: want lowercase letters and digits separated by '.', '_', '__' or '-'", p)
	}
	return nil
}
