package cli

import (
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/container"
	"github.com/kiln-project/kiln/internal/store"
)

// imageInfo is what `kiln inspect` prints for an image.
type imageInfo struct {
	Digest       string          `json:"Digest"`
	Tags         []string        `json:"Tags"`
	MediaType    types.MediaType `json:"MediaType"`
	Created      time.Time       `json:"Created"`
	Architecture string          `json:"Architecture"`
	OS           string          `json:"Os"`
	Size         int64           `json:"Size"` // manifest, config and compressed layers
	Config       v1.Config       `json:"Config"`
	ConfigDigest string          `json:"ConfigDigest"`
	Layers       []layerInfo     `json:"Layers"`
	History      []v1.History    `json:"History,omitempty"`
}

type layerInfo struct {
	Digest    string          `json:"Digest"`
	DiffID    string          `json:"DiffID"`
	Size      int64           `json:"Size"`
	MediaType types.MediaType `json:"MediaType"`
}

func newInspect(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect CONTAINER|IMAGE...",
		Short: "Show a container's state and spec, or an image's digest, config, layers and sizes, as JSON",
		Long: `A container is named by its name or (a prefix of) its ID; an image by name[:tag], sha256:DIGEST or
a unique digest prefix. Containers are looked up first, as Docker does. Prints a JSON array, one
object per argument.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := e.store()
			if err != nil {
				return err
			}
			tagged, err := st.List()
			if err != nil {
				return err
			}
			out := make([]any, 0, len(args))
			for _, ref := range args {
				if c, err := containerInfo(e, ref); err == nil {
					out = append(out, c)
					continue
				}
				d, err := st.Resolve(ref)
				if err != nil {
					return err
				}
				info, err := describe(st, d)
				if err != nil {
					return fmt.Errorf("inspect %s: %w", ref, err)
				}
				info.Tags = tagsOf(tagged, d)
				out = append(out, info)
			}
			return writeJSON(e, out)
		},
	}
}

// describe reads an image's manifest and config. Its Tags are left for the caller, who has the list.
func describe(st *store.Store, d v1.Hash) (*imageInfo, error) {
	img, err := st.Image(d)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	info := &imageInfo{Digest: d.String(), Tags: []string{}, MediaType: m.MediaType,
		Created: cf.Created.Time, Architecture: cf.Architecture, OS: cf.OS, Config: cf.Config,
		ConfigDigest: m.Config.Digest.String(), History: cf.History,
		Size: int64(len(raw)) + m.Config.Size}
	for i, l := range m.Layers {
		li := layerInfo{Digest: l.Digest.String(), Size: l.Size, MediaType: l.MediaType}
		if i < len(cf.RootFS.DiffIDs) {
			li.DiffID = cf.RootFS.DiffIDs[i].String()
		}
		info.Layers = append(info.Layers, li)
		info.Size += l.Size
	}
	return info, nil
}

// tagsOf returns the tags in tagged that name the image d.
func tagsOf(tagged []store.Tagged, d v1.Hash) []string {
	tags := []string{}
	for _, t := range tagged {
		if t.Digest == d {
			tags = append(tags, t.Ref)
		}
	}
	return tags
}

// containerView is what `kiln inspect` prints for a container: its recorded state and the
// runtime spec it runs with.
type containerView struct {
	*container.State
	Spec *specs.Spec `json:"Spec,omitempty"`
}

func containerInfo(e *env, ref string) (*containerView, error) {
	rec, err := getContainer(e, ref)
	if err != nil {
		return nil, err
	}
	s, err := rec.State()
	if err != nil {
		return nil, err
	}
	spec, _ := readSpec(rec.Dir())
	return &containerView{State: s, Spec: spec}, nil
}
