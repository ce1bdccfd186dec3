package bake

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

func TestStripSignature(t *testing.T) {
	module := []byte("\x7fELF pretend module body")
	signer, keyID, sig := []byte("signer"), []byte("key-id"), bytes.Repeat([]byte{7}, 512)
	info := []byte{0, 0, 2, byte(len(signer)), byte(len(keyID)), 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(info[8:], uint32(len(sig)))
	signed := bytes.Join([][]byte{module, signer, keyID, sig, info, []byte(sigMarker)}, nil)
	if got := stripSignature(signed); !bytes.Equal(got, module) {
		t.Errorf("stripSignature left %d bytes, want the %d of the module", len(got), len(module))
	}
	if got := stripSignature(module); !bytes.Equal(got, module) {
		t.Error("stripSignature changed an unsigned module")
	}
	bad := bytes.Join([][]byte{[]byte("x"), info, []byte(sigMarker)}, nil) // lengths past the start
	if got := stripSignature(bad); !bytes.Equal(got, bad) {
		t.Error("stripSignature cut a module whose signature lengths do not fit")
	}
}

// TestStripSignatureRealModule strips a module of the host's kernel, if it has signed ones, and
// checks that what is left is the whole ELF file.
func TestStripSignatureRealModule(t *testing.T) {
	kos, _ := filepath.Glob("/lib/modules/*/kernel/drivers/char/virtio_console.ko")
	if len(kos) == 0 {
		t.Skip("SKIP: no uncompressed virtio_console.ko under /lib/modules")
	}
	data, err := os.ReadFile(kos[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(data, []byte(sigMarker)) {
		t.Skipf("SKIP: %s is not signed", kos[0])
	}
	stripped := stripSignature(data)
	f, err := elf.NewFile(bytes.NewReader(stripped))
	if err != nil {
		t.Fatalf("the stripped module is not ELF: %v", err)
	}
	f.Close()
	// The section header table ends a module: e_shoff at 0x28, e_shentsize and e_shnum at 0x3a.
	shoff := binary.LittleEndian.Uint64(stripped[0x28:])
	size, num := binary.LittleEndian.Uint16(stripped[0x3a:]), binary.LittleEndian.Uint16(stripped[0x3c:])
	if end := int(shoff) + int(size)*int(num); end != len(stripped) {
		t.Errorf("stripped module is %d bytes, its ELF ends at %d", len(stripped), end)
	}
}

// TestSignaturesKeptWhenDemanded: a kernel that enforces signatures, or forces lockdown (which
// refuses unsigned modules too), keeps them.
func TestSignaturesKeptWhenDemanded(t *testing.T) {
	for opt, want := range map[string]bool{
		"CONFIG_MODULE_SIG_FORCE":                       true,
		"CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY":       true,
		"CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY": true,
		"CONFIG_LOCK_DOWN_KERNEL_FORCE_NONE":            false,
		"CONFIG_MODULE_SIG":                             false,
	} {
		k := &Kernel{Config: map[string]string{opt: "y"}}
		if got := k.demandsSignedModules(); got != want {
			t.Errorf("%s=y: demandsSignedModules = %v, want %v", opt, got, want)
		}
	}
}
