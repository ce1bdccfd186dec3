package build

import (
	"fmt"
	"os"

	"github.com/kiln-project/kiln/internal/closure"
	"github.com/kiln-project/kiln/internal/layer"
	"github.com/kiln-project/kiln/internal/spec"
)

// certificates: true, for TLS clients; no static walk of a binary sees the bundle it opens.

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
