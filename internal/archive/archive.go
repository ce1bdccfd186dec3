// Package archive moves images in and out of kiln as files other tools understand:
// OCI archives (a tar of an OCI image layout), docker archives (what `docker save` writes)
// and OCI layout directories.
//
// It works on v1.Image values only and never touches kiln's store: the caller reads an image
// out of the store and hands it to Save, or takes what Load returns and writes it into the
// store (whose WriteImage verifies digests, diffIDs and layer safety on the way in).
//
//	f, _ := os.Create("curl.tar")
//	err := archive.Save(f, img, "curl:latest", archive.FormatDocker) // then: docker load -i curl.tar
//
//	images, cleanup, err := archive.Load("curl.tar")
//	defer cleanup()
//
// # Names in an OCI archive
//
// Save writes index.json the way `docker save` (25+) and BuildKit's OCI exporter do: one manifest
// descriptor whose annotation io.containerd.image.name holds the full name
// ("docker.io/library/curl:latest") and whose org.opencontainers.image.ref.name holds only the tag
// ("latest"). Podman (and buildah) and Docker take the name from io.containerd.image.name;
// skopeo needs no name for a single-image archive (`skopeo inspect oci-archive:curl.tar`) and
// matches an explicit one against ref.name (`oci-archive:curl.tar:latest`). The manifest is
// written as it is, so its digest is kept; skopeo only matches names of manifests with OCI media
// types, so an image with Docker media types is reachable there without a name only.
//
// # Names found by Load
//
// Load reports tags as written in the archive (io.containerd.image.name, else
// org.opencontainers.image.ref.name, else a docker archive's RepoTags), with Docker Hub's
// implicit prefixes removed so that names read the way users type them:
// "docker.io/library/curl:latest" and "index.docker.io/library/curl:latest" become "curl:latest",
// "docker.io/kiln/app:1" becomes "kiln/app:1". Other registries, "localhost/" included, are kept.
// A ref.name holding only a tag (umoci writes "latest") is returned as it is; names that do not
// parse as image references are dropped.
//
// Load treats its input as untrusted: an OCI archive is never extracted blindly (only the files
// an OCI layout consists of are accepted, each blob is checked against its digest), and every
// image is checked to be complete before Load returns, so a truncated or corrupt archive is an
// error rather than an image that fails later.
package archive

import (
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Format is the kind of archive Save writes.
type Format int

const (
	// FormatOCI is an OCI archive: a tar of an OCI image layout (skopeo's "oci-archive").
	FormatOCI Format = iota
	// FormatDocker is a docker archive: what `docker save` writes and `docker load` reads.
	FormatDocker
)

// ParseFormat parses "oci" or "docker".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "oci":
		return FormatOCI, nil
	case "docker":
		return FormatDocker, nil
	}
	return 0, fmt.Errorf("unknown archive format %q (want oci or docker)", s)
}

func (f Format) String() string {
	switch f {
	case FormatOCI:
		return "oci"
	case FormatDocker:
		return "docker"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Kind is what Sniff found at a path.
type Kind int

const (
	// KindOCILayout is a directory holding an OCI image layout.
	KindOCILayout Kind = iota + 1
	// KindOCIArchive is a tar (possibly gzip-compressed) of an OCI image layout.
	// A docker archive written by Docker 25 or later is also an OCI archive and is sniffed as one.
	KindOCIArchive
	// KindDockerArchive is a tar (possibly gzip-compressed) with a manifest.json, as `docker save` writes.
	KindDockerArchive
)

func (k Kind) String() string {
	switch k {
	case KindOCILayout:
		return "OCI layout"
	case KindOCIArchive:
		return "OCI archive"
	case KindDockerArchive:
		return "docker archive"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Loaded is one image found by Load.
type Loaded struct {
	Image v1.Image
	// Tags are the image's names as found in the archive ("curl:latest"), Docker Hub's
	// implicit prefixes removed; empty when the archive names none.
	Tags []string
}

// ErrUnsafeEntry is wrapped by Load's errors for tar entries an OCI archive must not have:
// paths outside the layout, links, devices, duplicates.
var ErrUnsafeEntry = errors.New("unsafe entry")
