package build

import (
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-project/kiln/internal/spec"
)

// defaultPath is set in scratch images so bare command names resolve, as Docker's runtime would.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// assemble appends the contents layer to the base (an OCI image, see openBase) and writes
// kiln.yaml's config over the base's.
func assemble(base *baseImage, l *builtLayer, sp *spec.Spec, c *collected, epoch time.Time) (v1.Image, error) {
	created := v1.Time{Time: epoch.UTC()}
	img, err := mutate.Append(base.img, mutate.Addendum{
		Layer:     l,
		MediaType: types.OCILayer,
		History:   v1.History{Created: created, CreatedBy: "kiln build", Comment: "contents"},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = created
	if cf.Architecture == "" {
		cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	}
	applyConfig(&cf.Config, sp, c, sp.Base.Scratch())
	return mutate.ConfigFile(img, cf)
}

// applyConfig follows Dockerfile semantics: setting the entrypoint resets an inherited cmd;
// env and labels merge by name.
func applyConfig(cfg *v1.Config, sp *spec.Spec, c *collected, scratch bool) {
	k := sp.Config
	if scratch {
		cfg.Env = mergeEnv(cfg.Env, []string{defaultPath})
	}
	cfg.Env = mergeEnv(cfg.Env, c.env)
	cfg.Env = mergeEnv(cfg.Env, k.Env)
	if k.Entrypoint != nil {
		cfg.Entrypoint, cfg.Cmd = k.Entrypoint, nil
	}
	if k.Cmd != nil {
		cfg.Cmd = k.Cmd
	}
	if k.WorkingDir != "" {
		cfg.WorkingDir = k.WorkingDir
	}
	switch {
	case k.User != "":
		cfg.User = k.User
	case sp.Accounts.RunAs != "":
		cfg.User = sp.Accounts.RunAs
	}
	for _, p := range k.Ports {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		cfg.ExposedPorts[p] = struct{}{}
	}
	for _, v := range k.Volumes {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[v] = struct{}{}
	}
	for n, v := range k.Labels {
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels[n] = v
	}
	if k.StopSignal != "" {
		cfg.StopSignal = k.StopSignal
	}
}

// mergeEnv sets each NAME=value of add in env, replacing an earlier value of the same name in place.
func mergeEnv(env, add []string) []string {
	for _, kv := range add {
		name, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range env {
			if n, _, _ := strings.Cut(old, "="); n == name {
				env[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			env = append(env, kv)
		}
	}
	return env
}
