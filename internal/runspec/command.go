package runspec

import (
	"errors"
	"fmt"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrNoCommand is returned when neither the image nor the command line gives
// a command.
var ErrNoCommand = errors.New("no command specified")

// command applies Docker's rules: arguments after the image replace the
// image's Cmd; --entrypoint replaces the image's Entrypoint ("" clears it)
// and drops the image's Cmd, so only the arguments follow it.
func command(img v1.Config, args []string, entrypoint *string) ([]string, error) {
	ep, cmd := img.Entrypoint, img.Cmd
	if entrypoint != nil {
		ep, cmd = nil, nil
		if *entrypoint != "" {
			ep = []string{*entrypoint}
		}
	}
	if len(args) > 0 {
		cmd = args
	}
	argv := append(append([]string{}, ep...), cmd...)
	if len(argv) == 0 || argv[0] == "" {
		return nil, ErrNoCommand
	}
	return argv, nil
}

// workdir is -w, else the image's WorkingDir, else "/". -w must be absolute
// (Docker refuses a relative one); a relative WorkingDir in an image is taken
// from the root.
func workdir(flag, image string) (string, error) {
	switch {
	case flag != "":
		if !path.IsAbs(flag) {
			return "", fmt.Errorf("-w %s: must be an absolute path", flag)
		}
		return path.Clean(flag), nil
	case image != "":
		return path.Join("/", image), nil
	}
	return "/", nil
}

// maxHostname is HOST_NAME_MAX: sethostname(2) takes no more.
const maxHostname = 64

// hostname is --hostname, else the host's with --network host (as Docker),
// else the first 12 characters of the container's ID.
func hostname(flag, id string, hostNetwork bool) (string, error) {
	h := flag
	if h == "" && hostNetwork {
		h = hostHostname()
	}
	if h == "" {
		h = id
		if len(h) > 12 {
			h = h[:12]
		}
	}
	switch {
	case h == "":
		return "", errors.New("no --hostname and no container ID to derive one from")
	case len(h) > maxHostname:
		return "", fmt.Errorf("--hostname %s: longer than %d bytes", h, maxHostname)
	case strings.ContainsAny(h, "\x00/ \t\n"):
		return "", fmt.Errorf("--hostname %q: not a valid host name", h)
	}
	return h, nil
}
