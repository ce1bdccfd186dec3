package build

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-project/kiln/internal/closure"
	"github.com/kiln-project/kiln/internal/layer"
	"github.com/kiln-project/kiln/internal/spec"
)

// nss: true, for getpwnam and DNS: glibc dlopens the modules nsswitch.conf names.

// nsswitch resolves accounts and hosts from files, then DNS: all the modules the image carries.
const nsswitch = `passwd:    files
group:     files
shadow:    files
hosts:     files dns
networks:  files
protocols: files
services:  files
`

const hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

// nssModules are the glibc modules nsswitch.conf above names.
var nssModules = []string{"libnss_files.so.2", "libnss_dns.so.2"}

func addNSS(sp *spec.Spec, c *collected, res *closure.Resolver) error {
	if !sp.Contents.NSS {
		return nil
	}
	pos := spec.Pos{Field: "contents.nss"}
	org := origin(sp, pos)
	c.add(layer.Entry{Path: "/etc/nsswitch.conf", Kind: layer.Regular, Data: []byte(nsswitch), Mode: 0o644, Origin: org},
		layer.Entry{Path: "/etc/hosts", Kind: layer.Regular, Data: []byte(hosts), Mode: 0o644, Origin: org})
	for _, m := range nssModules {
		p, err := findLibrary(m)
		if err != nil {
			return specErr(sp, pos, "", err)
		}
		files, err := res.Resolve(p)
		if err != nil {
			return specErr(sp, pos, "", err)
		}
		if err := addClosure(sp, c, pos, p, p, files); err != nil {
			return err
		}
	}
	return nil
}

// libDirs are searched for NSS modules, which only dlopen finds.
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

func findLibrary(name string) (string, error) {
	for _, d := range libDirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on this host (looked in %v)", name, libDirs)
}
