package cli

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-project/kiln/internal/container"
	"github.com/kiln-project/kiln/internal/runspec"
	"github.com/kiln-project/kiln/internal/volume"
)

// volumeFlag is one -v: a host path or a volume name, mounted at Dest.
type volumeFlag struct {
	Source, Dest string
	ReadOnly     bool
}

// parseVolume reads -v SRC:DST[:ro|rw].
func parseVolume(s string) (volumeFlag, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return volumeFlag{}, fmt.Errorf("-v %q: want SOURCE:DEST[:ro]", s)
	}
	v := volumeFlag{Source: parts[0], Dest: parts[1]}
	if !path.IsAbs(v.Dest) {
		return v, fmt.Errorf("-v %q: destination %q must be an absolute path", s, v.Dest)
	}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			v.ReadOnly = true
		case "rw":
		default:
			return v, fmt.Errorf("-v %q: unknown option %q (want ro or rw)", s, parts[2])
		}
	}
	return v, nil
}

// volumes turns -v flags and the image's declared volumes into binds, creating named and
// anonymous volumes (filled with the image's content at their mount point, as Docker does).
func (p *prepared) volumes(f *runFlags, cf *v1.ConfigFile, layers []string) ([]runspec.Bind, error) {
	var binds []runspec.Bind
	var named, anon []string
	taken := map[string]bool{}
	var vs *volume.Volumes
	openVolumes := func() (*volume.Volumes, error) {
		var err error
		if vs == nil {
			vs, err = volume.Open(p.root)
		}
		return vs, err
	}
	for _, s := range f.volumes {
		v, err := parseVolume(s)
		if err != nil {
			return nil, err
		}
		taken[path.Clean(v.Dest)] = true
		if filepath.IsAbs(v.Source) {
			if _, err := os.Stat(v.Source); err != nil {
				return nil, fmt.Errorf("-v %s: bind source path does not exist: %s", s, v.Source)
			}
			binds = append(binds, runspec.Bind{Source: v.Source, Destination: v.Dest, ReadOnly: v.ReadOnly})
			continue
		}
		vs, err := openVolumes()
		if err != nil {
			return nil, err
		}
		b, err := attachVolume(vs, v.Source, false, v.Dest, v.ReadOnly, layers)
		if err != nil {
			return nil, fmt.Errorf("-v %s: %w", s, err)
		}
		binds, named = append(binds, b), append(named, v.Source)
	}
	for _, dest := range imageVolumes(cf) {
		if taken[dest] {
			continue
		}
		vs, err := openVolumes()
		if err != nil {
			return nil, err
		}
		b, err := attachVolume(vs, "", true, dest, false, layers)
		if err != nil {
			return nil, fmt.Errorf("image volume %s: %w", dest, err)
		}
		binds, anon = append(binds, b), append(anon, filepath.Base(filepath.Dir(b.Source)))
	}
	if len(named)+len(anon) == 0 {
		return binds, nil
	}
	return binds, p.rec.Update(func(s *container.State) error {
		s.Volumes, s.AnonVolumes = named, anon
		return nil
	})
}

func imageVolumes(cf *v1.ConfigFile) []string {
	var out []string
	for v := range cf.Config.Volumes {
		out = append(out, path.Clean(v))
	}
	sort.Strings(out)
	return out
}

func attachVolume(vs *volume.Volumes, name string, anonymous bool, dest string, ro bool, layers []string) (runspec.Bind, error) {
	vol, err := vs.Create(name, anonymous)
	if err != nil {
		return runspec.Bind{}, err
	}
	if err := vol.PopulateFromLayers(layers, dest); err != nil {
		return runspec.Bind{}, err
	}
	return runspec.Bind{Source: vol.Dir, Destination: dest, ReadOnly: ro}, nil
}
