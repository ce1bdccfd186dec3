package build

import (
	"fmt"
	"path"
	"path/filepath"

	"github.com/kiln-project/kiln/internal/closure"
	"github.com/kiln-project/kiln/internal/layer"
	"github.com/kiln-project/kiln/internal/spec"
)

// timezone: true or a zone name, for localtime: libc and Go read zoneinfo files at run time.

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
