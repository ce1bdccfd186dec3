package boot

import (
	"fmt"
	"os"
)

// Accelerators for --accel.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

const kvmGetAPIVersion = 0xAE00 // _IO(KVMIO, 0x00)

// chooseAccel resolves --accel: auto is KVM when it can run a stock kernel, else TCG with a
// notice saying why.
func chooseAccel(want string, notice func(string)) (string, error) {
	switch want {
	case AccelTCG:
		return AccelTCG, nil
	case AccelKVM:
		if err := openKVM(); err != nil {
			return "", fmt.Errorf("--accel kvm: %w", err)
		}
		return AccelKVM, nil
	case AccelAuto, "":
		if why := kvmUnusable(); why != "" {
			notice(why + ": using TCG (emulation, slower)")
			return AccelTCG, nil
		}
		return AccelKVM, nil
	}
	return "", fmt.Errorf("--accel %q: want kvm, tcg or auto", want)
}

// kvmUnusable says why KVM cannot boot a stock kernel here, or "" if it can.
//
// /dev/kvm opening is not enough: inside some cloud VMs it is served by PVM (kvm_pvm), a
// paravirtual KVM that runs only kernels built as PVM guests; a stock kernel hangs at once.
// Real hardware virtualization is kvm_intel or kvm_amd.
func kvmUnusable() string {
	if err := openKVM(); err != nil {
		return err.Error()
	}
	if exists("/sys/module/kvm_intel") || exists("/sys/module/kvm_amd") {
		return ""
	}
	if exists("/sys/module/kvm_pvm") {
		return "KVM here is PVM (kvm_pvm), which boots only PVM guest kernels"
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
