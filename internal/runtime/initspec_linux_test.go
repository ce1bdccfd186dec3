package runtime

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Every field of specs.Spec and specs.Linux is sent to the init (initSpec), done by the parent,
// or refused by validate: none is silently dropped on the way to the init. A field a newer
// runtime-spec adds fails this test until it is put in one of the three.
func TestInitSpecFields(t *testing.T) {
	byParent := map[string]bool{
		"ociVersion":        true, // nothing to do
		"linux.resources":   true, // the cgroups
		"linux.cgroupsPath": true,
		"linux.seccomp":     true, // compiled by the parent, sent as BPF
	}
	sent := jsonNames(reflect.TypeFor[initSpec](), "")
	for k := range jsonNames(reflect.TypeFor[initLinux](), "linux.") {
		sent[k] = true
	}
	check := func(owner reflect.Type, prefix string, set func(s *specs.Spec) reflect.Value) {
		for i := range owner.NumField() {
			f := owner.Field(i)
			name := prefix + jsonName(f)
			if sent[name] || byParent[name] || name == "linux" {
				continue
			}
			s := testSpec("/", "true")
			fillNonZero(set(s).Field(i))
			if err := validate(s); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("spec field %s: neither sent to the init, done by the parent, nor refused (validate: %v)", name, err)
			}
		}
	}
	check(reflect.TypeFor[specs.Spec](), "", func(s *specs.Spec) reflect.Value { return reflect.ValueOf(s).Elem() })
	check(reflect.TypeFor[specs.Linux](), "linux.", func(s *specs.Spec) reflect.Value { return reflect.ValueOf(s.Linux).Elem() })
}

// What the init reads arrives whole.
func TestInitSpecRoundTrip(t *testing.T) {
	s := testSpec("/rootfs", "sh", "-c", "true")
	s.Hostname, s.Domainname = "h", "example.org"
	s.Annotations = map[string]string{InitAnnotation: "true"}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind", "ro"}})
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	s.Linux.RootfsPropagation = "rslave"
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
	s.Linux.ReadonlyPaths = []string{"/proc/sys"}
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}}
	b, err := json.Marshal(newInitSpec(s))
	if err != nil {
		t.Fatal(err)
	}
	var is initSpec
	if err := json.Unmarshal(b, &is); err != nil {
		t.Fatal(err)
	}
	got := is.spec()
	want := *s
	wantLinux := specs.Linux{Namespaces: s.Linux.Namespaces, Devices: s.Linux.Devices, Sysctl: s.Linux.Sysctl,
		RootfsPropagation: s.Linux.RootfsPropagation, MaskedPaths: s.Linux.MaskedPaths, ReadonlyPaths: s.Linux.ReadonlyPaths}
	want.Version, want.Linux = "", &wantLinux
	if !reflect.DeepEqual(got, &want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(&want)
		t.Errorf("the init reads\n%s\nwant\n%s", g, w)
	}
}

func jsonNames(t reflect.Type, prefix string) map[string]bool {
	m := map[string]bool{}
	for i := range t.NumField() {
		m[prefix+jsonName(t.Field(i))] = true
	}
	return m
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// fillNonZero gives v a value that is not its zero value.
func fillNonZero(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem())
	case reflect.String:
		v.SetString("x")
	default:
		v.Set(reflect.New(v.Type()).Elem())
	}
}
