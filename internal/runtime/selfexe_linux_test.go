package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The file the init runs from cannot be written through its descriptor's /proc link (what a
// container reaches as /proc/PID/exe), and no mount of it is left in the mount table. A
// regular file stands for the binary here: the running test binary itself would refuse any
// write with ETXTBSY, protected or not.
func TestOpenReadOnly(t *testing.T) {
	needRoot(t)
	for name, open := range map[string]func(string) (*os.File, error){
		"detached": openDetached, "bound": openBound,
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "kiln")
			if err := os.WriteFile(p, []byte("binary"), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := open(p)
			if errors.Is(err, unix.ENOSYS) {
				t.Skipf("SKIP: %v (the other way covers this kernel)", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_WRONLY, 0)
			if !errors.Is(err, unix.EROFS) {
				t.Errorf("open for writing through the descriptor: %v, want EROFS", err)
			}
			if data, err := os.ReadFile("/proc/self/fd/" + strconv.Itoa(int(f.Fd()))); string(data) != "binary" {
				t.Errorf("read through the descriptor: %q, %v", data, err)
			}
			mounts, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(mounts), " "+p+" ") || strings.Contains(string(mounts), ".kiln-exe-") {
				t.Errorf("a mount of the file is left in the mount table")
			}
			if err := os.WriteFile(p, []byte("changed"), 0o755); err != nil {
				t.Errorf("the file itself stays writable on the host: %v", err)
			}
		})
	}
}
