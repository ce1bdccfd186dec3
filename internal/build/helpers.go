package build

import (
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/kiln-project/kiln/internal/closure"
	"github.com/kiln-project/kiln/internal/layer"
	"github.com/kiln-project/kiln/internal/spec"
)

// What dynamic lookups need that no static walk of a binary sees.

// caBundles are where distributions keep the PEM bundle of trusted roots.
var caBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Arch
	"/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
	"/etc/ssl/ca-bundle.pem",             // openSUSE
	"/etc/ssl/cert.pem",
}

// caPath is where the bundle goes in the image: the path Go, OpenSSL and GnuTLS on Debian look at.
const caPath = "/etc/ssl/certs/ca-certificates.crt"

func addCertificates(sp *spec.Spec, c *collected, _ *closure.Resolver) error {
	if !sp.Contents.Certificates {
		return nil
	}
	pos := spec.Pos{Field: "contents.certificates"}
	for _, p := range caBundles {
		if _, err := os.Stat(p); err == nil {
			c.add(layer.Entry{Path: caPath, Kind: layer.Regular, Source: p, Mode: 0o644, Origin: origin(sp, pos)})
			c.env = append(c.env, "SSL_CERT_FILE="+caPath)
			return nil
		}
	}
	return specErr(sp, pos, "", fmt.Errorf("no CA bundle on this host (looked for %v; install ca-certificates)", caBundles))
}

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

const zoneinfo = "/usr/share/zoneinfo"

func addTimezone(sp *spec.Spec, c *collected, _ *closure.Resolver) error {
	tz := sp.Contents.Timezone
	if tz == "" {
		return nil
	}
	pos := sp.Contents.TimezonePos
	if pos.Field == "" {
		pos.Field = "contents.timezone"
	}
	org := origin(sp, pos)
	if tz == "all" {
		if err := addTree(c, zoneinfo, zoneinfo, 0, 0, org); err != nil {
			return specErr(sp, pos, "", err)
		}
		c.add(layer.Entry{Path: "/etc/localtime", Kind: layer.Symlink, Target: zoneinfo + "/UTC", Mode: 0o777, Origin: org})
		return nil
	}
	src, err := filepath.EvalSymlinks(filepath.Join(zoneinfo, tz))
	if err != nil {
		return specErr(sp, pos, "", fmt.Errorf("time zone %q: %w", tz, err))
	}
	dst := path.Join(zoneinfo, tz)
	c.add(layer.Entry{Path: dst, Kind: layer.Regular, Source: src, Mode: 0o644, Origin: org},
		layer.Entry{Path: "/etc/localtime", Kind: layer.Symlink, Target: dst, Mode: 0o777, Origin: org})
	c.env = append(c.env, "TZ="+tz)
	return nil
}
