package guest

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// defaultPath is the PATH an app gets when neither the image nor the command line sets one,
// as in Docker and runc.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// LoadConfig reads the baked config at file and applies the kernel command line to it (the
// command line wins), then fills in the defaults: workdir /, hostname kiln, PATH and HOME.
// When the file was read but the command line or the result is wrong, it returns the config as
// far as it got with the error, so that the modules can still be loaded and the error reported
// on the console ports.
func LoadConfig(file, cmdline string) (*bootconfig.Config, error) {
	b, err := readFile(file)
	if err != nil {
		return nil, err
	}
	c, err := bootconfig.Decode(b) // not encoding/json: see Decode
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := c.Apply(cmdline); err != nil {
		return c, err
	}
	if err := finish(c); err != nil {
		return c, fmt.Errorf("config %s with the kernel command line: %w", file, err)
	}
	return c, nil
}

func finish(c *bootconfig.Config) error {
	if len(c.Args) == 0 || c.Args[0] == "" {
		return fmt.Errorf("no command: the image has no entrypoint or cmd, and the kernel command line no kiln.args")
	}
	if c.Workdir == "" {
		c.Workdir = "/"
	}
	if !path.IsAbs(c.Workdir) {
		return fmt.Errorf("workdir %q is not absolute", c.Workdir)
	}
	if c.Hostname == "" {
		c.Hostname = "kiln"
	}
	if _, _, err := parseUser(c.User); err != nil {
		return err
	}
	if getenv(c.Env, "PATH") == "" {
		c.Env = append(c.Env, "PATH="+defaultPath)
	}
	if getenv(c.Env, "HOME") == "" {
		c.Env = append(c.Env, "HOME=/")
	}
	return nil
}

// parseUser parses a numeric "uid:gid", or "uid" (gid 0); "" is root.
func parseUser(u string) (uid, gid uint32, err error) {
	if u == "" {
		return 0, 0, nil
	}
	us, gs, hasGID := strings.Cut(u, ":")
	uid, err = parseID(us)
	if err == nil && hasGID {
		gid, err = parseID(gs)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("user %q: want numeric uid:gid (names are resolved at bake time)", u)
	}
	return uid, gid, nil
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// getenv returns NAME's value in env, the last one winning as in the kernel's execve.
func getenv(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if n, val, ok := strings.Cut(kv, "="); ok && n == name {
			v = val
		}
	}
	return v
}

// StatusLine is the line written on the status port for an exit status.
func StatusLine(code int) string {
	return bootconfig.StatusPrefix + strconv.Itoa(code) + "\n"
}
