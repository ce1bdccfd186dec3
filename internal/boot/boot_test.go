package boot

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

func TestQEMUArgs(t *testing.T) {
	m := &machine{accel: AccelTCG, kernel: "/b/kernel", initramfs: "/b/initramfs", cmdline: "console=ttyS0 kiln.net=user",
		memory: "256M", cpus: 2, network: true, ports: []Port{{Host: 8080, Guest: 80}},
		volumes: []Volume{{HostDir: "/srv/a,b", Target: "/data", ReadOnly: true}}}
	got := strings.Join(m.args(), " ")
	for _, want := range []string{
		"-M microvm -accel tcg", "-m 256M -smp 2", "-nodefaults -no-user-config -nographic -no-reboot",
		"-kernel /b/kernel -initrd /b/initramfs -append console=ttyS0 kiln.net=user",
		"-chardev file,id=console,path=/dev/fd/6,append=on -serial chardev:console",
		"-chardev file,id=stdout,path=/dev/fd/3,append=on -device isa-serial,chardev=stdout,iobase=0x2f8,irq=3",
		"-chardev file,id=stderr,path=/dev/fd/4,append=on -device isa-serial,chardev=stderr,iobase=0x3e8,irq=4",
		"-chardev socket,id=status,fd=5 -device isa-serial,chardev=status,iobase=0x2e8,irq=3",
		"-netdev user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80 -device virtio-net-device,netdev=net0",
		"-fsdev local,id=fs0,path=/srv/a,,b,security_model=none,readonly=on -device virtio-9p-device,fsdev=fs0,mount_tag=kiln0",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("qemu args lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "-cpu host") {
		t.Error("-cpu host under TCG")
	}
}

func TestCmdline(t *testing.T) {
	cfg := &bootconfig.Config{Args: []string{"/app", "serve"}, Entrypoint: []string{"/app"},
		NetModules:   []string{"/kiln/modules/virtio_mmio.ko", "/kiln/modules/virtio_net.ko"},
		MountModules: []string{"/kiln/modules/virtio_mmio.ko", "/kiln/modules/9p.ko"}}
	o := Options{Env: []string{"A=b c"}, Args: []string{"run", "x"}, Volumes: []Volume{{HostDir: "/h", Target: "/data"}}}
	line, err := cmdline("console=ttyS0 quiet", cfg, o, true, AccelKVM)
	if err != nil {
		t.Fatal(err)
	}
	var got bootconfig.Config
	if err := got.Apply(line); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/app", "run", "x"}; !slices.Equal(got.Args, want) {
		t.Errorf("args %q, want the entrypoint and the arguments %q", got.Args, want)
	}
	if want := []string{"/kiln/modules/virtio_mmio.ko", "/kiln/modules/virtio_net.ko", "/kiln/modules/9p.ko"}; !slices.Equal(got.Modules, want) {
		t.Errorf("modules %q, want %q", got.Modules, want)
	}
	if got.Net == nil || len(got.Mounts) != 1 || got.Mounts[0].Tag != "kiln0" || !slices.Equal(got.Env, []string{"A=b c"}) {
		t.Errorf("config from %q: %+v", line, got)
	}
	line, _ = cmdline("console=ttyS0", cfg, Options{}, false, AccelKVM)
	if line != "console=ttyS0" {
		t.Errorf("a plain boot added %q", line)
	}
}

func TestParsePortAndVolume(t *testing.T) {
	if p, err := ParsePort("8080:80"); err != nil || p != (Port{8080, 80}) {
		t.Errorf("ParsePort = %v, %v", p, err)
	}
	for _, bad := range []string{"80", "0:80", "a:80", "80:70000", "1:2:3"} {
		if _, err := ParsePort(bad); err == nil {
			t.Errorf("ParsePort(%q) accepted", bad)
		}
	}
	dir := t.TempDir()
	if v, err := ParseVolume(dir + ":/data/:ro"); err != nil || v != (Volume{HostDir: dir, Target: "/data", ReadOnly: true}) {
		t.Errorf("ParseVolume = %+v, %v", v, err)
	}
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	for _, bad := range []string{dir + "/missing:/data", file + ":/data", dir + ":data", dir + ":/data:rw", dir} {
		if _, err := ParseVolume(bad); err == nil {
			t.Errorf("ParseVolume(%q) accepted", bad)
		}
	}
}

func TestStatusReader(t *testing.T) {
	s := newStatusReader()
	s.Write([]byte("noise\nkiln-rea"))
	select {
	case <-s.ready:
		t.Fatal("ready before the line was complete")
	default:
	}
	s.Write([]byte("dy\nkiln-warning output cut\nkiln-ex"))
	if s.ok {
		t.Fatal("status before the line was complete")
	}
	s.Write([]byte("it 42\nkiln-ready\nkiln-exit 7\n"))
	if !s.ok || s.code != 42 {
		t.Errorf("status %v %d, want the first line's 42", s.ok, s.code)
	}
	select {
	case <-s.ready:
	default:
		t.Error("kiln-ready did not make the reader ready")
	}
	if len(s.warnings) != 1 || s.warnings[0] != "output cut" {
		t.Errorf("warnings %q, want [output cut]", s.warnings)
	}
}

func TestChooseAccel(t *testing.T) {
	if _, err := chooseAccel("hvf", nil); err == nil {
		t.Error("--accel hvf accepted")
	}
	if a, err := chooseAccel(AccelTCG, nil); a != AccelTCG || err != nil {
		t.Errorf("tcg: %q %v", a, err)
	}
	var notice string
	a, err := chooseAccel(AccelAuto, func(s string) { notice = s })
	if err != nil || (a == AccelTCG) != (notice != "") {
		t.Errorf("auto chose %q (notice %q), %v", a, notice, err)
	}
}

func TestLineTail(t *testing.T) {
	lt := &lineTail{max: 2}
	lt.Write([]byte("one\ntwo\nthr"))
	lt.Write([]byte("ee\r\n"))
	if got := lt.String(); got != "two\nthree" {
		t.Errorf("tail %q", got)
	}
}

func TestValidMemory(t *testing.T) {
	for s, want := range map[string]bool{"256M": true, "1G": true, "512": true, "0": false, "1GB": false, "-1M": false, "lots": false, "": false} {
		if got := validMemory(s); got != want {
			t.Errorf("validMemory(%q) = %v", s, got)
		}
	}
}
