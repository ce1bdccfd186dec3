package bootconfig

import (
	"slices"
	"testing"
)

func TestApplyModule(t *testing.T) {
	c := Config{Modules: []string{"/kiln/modules/virtio.ko"}}
	if err := c.Apply("kiln.module=/kiln/modules/virtio.ko kiln.module=/kiln/modules/9p.ko"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/kiln/modules/virtio.ko", "/kiln/modules/9p.ko"}; !slices.Equal(c.Modules, want) {
		t.Errorf("Modules = %q, want %q", c.Modules, want)
	}
	if err := c.Apply("kiln.module=9p.ko"); err == nil {
		t.Error("a relative module path was accepted")
	}
}
