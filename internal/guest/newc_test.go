package guest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// newcWriter writes an initramfs: the kernel's "newc" cpio format (see the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst), every file owned by root, mtime 0.
type newcWriter struct {
	w   *bufio.Writer
	ino int
	err error
}

func (c *newcWriter) header(name string, mode, size, rdevMajor, rdevMinor int) {
	c.ino++
	fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.w.WriteString(name + "\x00")
	c.pad(110 + len(name) + 1)
}

func (c *newcWriter) pad(n int) {
	c.w.Write(make([]byte, (4-n%4)%4))
}

func (c *newcWriter) dir(name string) { c.header(name, 0o040755, 0, 0, 0) }

func (c *newcWriter) file(name string, mode int, data []byte) {
	c.header(name, 0o100000|mode, len(data), 0, 0)
	c.w.Write(data)
	c.pad(len(data))
}

func (c *newcWriter) symlink(name, target string) {
	c.header(name, 0o120777, len(target), 0, 0)
	c.w.WriteString(target)
	c.pad(len(target))
}

func (c *newcWriter) charDev(name string, major, minor int) {
	c.header(name, 0o020600, 0, major, minor)
}

func (c *newcWriter) close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	return c.w.Flush()
}

// hostFile copies a host file into the archive at name with its permission bits.
func (c *newcWriter) hostFile(t *testing.T, name, src string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(src)
	c.file(name, int(st.Mode().Perm()), b)
}

// moduleOrder lists the modules named (by module name: "virtio_mmio") and their dependencies,
// each after all it depends on, from modDir's modules.dep. Modules built into the kernel
// (modules.builtin) are left out; missing lists names that are neither.
func moduleOrder(modDir string, names ...string) (paths, missing []string, err error) {
	deps, err := readModulesDep(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, nil, err
	}
	builtin, _ := os.ReadFile(filepath.Join(modDir, "modules.builtin"))
	byName := map[string]string{}
	for p := range deps {
		byName[moduleName(p)] = p
	}
	seen := map[string]bool{}
	var visit func(string)
	visit = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		for _, d := range deps[p] {
			visit(d)
		}
		paths = append(paths, p)
	}
	for _, n := range names {
		switch p, ok := byName[n]; {
		case ok:
			visit(p)
		case !isBuiltin(string(builtin), n):
			missing = append(missing, n)
		}
	}
	return paths, missing, nil
}

func readModulesDep(file string) (map[string][]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		mod, list, ok := strings.Cut(line, ":")
		if ok {
			deps[mod] = strings.Fields(list)
		}
	}
	return deps, nil
}

// moduleName is the module name of a path: kernel/net/9p/9pnet_virtio.ko -> 9pnet_virtio.
func moduleName(p string) string {
	n := filepath.Base(p)
	n = n[:strings.Index(n, ".ko")]
	return strings.ReplaceAll(n, "-", "_")
}

func isBuiltin(list, name string) bool {
	for _, l := range strings.Split(list, "\n") {
		if l != "" && moduleName(l) == name {
			return true
		}
	}
	return false
}

func TestModuleOrderFromModulesDep(t *testing.T) {
	_, modDir := testKernel(t)
	paths, missing, err := moduleOrder(modDir, "virtio_mmio", "virtio_console", "9p", "9pnet_virtio", "virtio_net")
	if err != nil {
		t.Skipf("no modules.dep for the test kernel: %v", err)
	}
	t.Logf("load order %q, missing %q", paths, missing)
	deps, _ := readModulesDep(filepath.Join(modDir, "modules.dep"))
	at := map[string]int{}
	for i, p := range paths {
		at[p] = i
	}
	for i, p := range paths {
		for _, d := range deps[p] {
			if j, ok := at[d]; !ok || j > i {
				t.Errorf("%s is loaded before its dependency %s", p, d)
			}
		}
	}
	if len(paths)+len(missing) == 0 {
		t.Errorf("no module found for virtio_mmio nor reported missing")
	}
}

// testKernel returns the kernel to boot in tests, $KILN_TEST_KERNEL or a /boot/vmlinuz-* (one
// with 9P if there is one, else the newest), and its modules directory: ROOT/lib/modules/VERSION for ROOT/boot/vmlinuz-VERSION
// (so a kernel package unpacked with dpkg-deb -x works as it is).
func testKernel(t *testing.T) (kernel, modDir string) {
	t.Helper()
	kernel = os.Getenv("KILN_TEST_KERNEL")
	if kernel == "" {
		ks, _ := filepath.Glob("/boot/vmlinuz-*")
		sort.Strings(ks)
		if len(ks) == 0 {
			t.Skip("SKIP: no kernel to boot: no /boot/vmlinuz-* and KILN_TEST_KERNEL unset (apt-get install linux-image-cloud-amd64)")
		}
		kernel = ks[len(ks)-1]
		for _, k := range ks { // one with 9P (Debian's generic kernel) tests the shares too
			cfg, err := os.ReadFile(strings.Replace(k, "vmlinuz-", "config-", 1))
			if err == nil && strings.Contains(string(cfg), "\nCONFIG_NET_9P_VIRTIO=") && strings.Contains(string(cfg), "\nCONFIG_9P_FS=") {
				kernel = k
			}
		}
	}
	f, err := os.Open(kernel)
	if err != nil {
		t.Skipf("SKIP: kernel %s: %v", kernel, err)
	}
	f.Close()
	version := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	return kernel, filepath.Join(filepath.Dir(kernel), "..", "lib/modules", version)
}
