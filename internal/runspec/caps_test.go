package runspec

import (
	"slices"
	"testing"
)

func TestDefaultCaps(t *testing.T) {
	want := []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
	if got := DefaultCaps(); !slices.Equal(got, want) {
		t.Errorf("DefaultCaps() = %q", got)
	}
	for _, c := range want {
		if !slices.Contains(allCaps, c) {
			t.Errorf("%s not in allCaps", c)
		}
	}
	if len(allCaps) != 41 || allCaps[21] != "CAP_SYS_ADMIN" || allCaps[27] != "CAP_MKNOD" || allCaps[40] != "CAP_CHECKPOINT_RESTORE" {
		t.Errorf("allCaps is not in number order: %d entries", len(allCaps))
	}
}

func TestCapabilities(t *testing.T) {
	def := DefaultCaps()
	without := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(def), func(c string) bool { return slices.Contains(drop, c) })
	}
	allBut := func(drop ...string) []string {
		return slices.DeleteFunc(AllCaps(), func(c string) bool { return slices.Contains(drop, c) })
	}
	tests := []struct {
		name       string
		add, drop  []string
		privileged bool
		want       []string
	}{
		{"defaults", nil, nil, false, def},
		{"add, any spelling", []string{"net_admin", "CAP_SYS_PTRACE", "Sys_Time"}, nil, false,
			append(slices.Clone(def), "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_TIME")},
		{"add a default: no duplicate", []string{"CHOWN"}, nil, false, def},
		{"drop", nil, []string{"net_raw", "CAP_MKNOD"}, false, without("CAP_NET_RAW", "CAP_MKNOD")},
		{"drop then add the same", []string{"NET_RAW"}, []string{"NET_RAW"}, false,
			append(without("CAP_NET_RAW"), "CAP_NET_RAW")},
		{"drop ALL", nil, []string{"ALL"}, false, []string{}},
		{"drop all, lower case", nil, []string{"all"}, false, []string{}},
		{"drop ALL, add some", []string{"NET_BIND_SERVICE", "CHOWN"}, []string{"ALL"}, false,
			[]string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"}},
		{"add ALL", []string{"ALL"}, nil, false, AllCaps()},
		{"add ALL, drop some", []string{"ALL"}, []string{"SYS_ADMIN", "cap_sys_module"}, false,
			allBut("CAP_SYS_ADMIN", "CAP_SYS_MODULE")},
		{"add ALL wins over drop ALL", []string{"ALL"}, []string{"ALL"}, false, AllCaps()}, // as in moby
		{"privileged", nil, []string{"CHOWN"}, true, AllCaps()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := capabilities(tt.add, tt.drop, tt.privileged)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("caps =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestCapabilitiesErrors(t *testing.T) {
	tests := []struct {
		add, drop []string
		want      string
	}{
		{[]string{"FOO"}, nil, "--cap-add FOO: unknown capability"},
		{nil, []string{"cap_bar"}, "--cap-drop cap_bar: unknown capability"},
		{[]string{"CAP_ALL"}, nil, "--cap-add CAP_ALL: unknown capability"},
		{[]string{""}, nil, "--cap-add : unknown capability"},
	}
	for _, tt := range tests {
		_, err := capabilities(tt.add, tt.drop, false)
		if err == nil || err.Error() != tt.want {
			t.Errorf("capabilities(%q, %q) err = %v, want %q", tt.add, tt.drop, err, tt.want)
		}
	}
}
