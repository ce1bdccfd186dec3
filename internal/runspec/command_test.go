package runspec

import (
	"errors"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func strp(s string) *string { return &s }

func TestCommand(t *testing.T) {
	img := v1.Config{Entrypoint: []string{"/ep", "-x"}, Cmd: []string{"cmd", "arg"}}
	onlyCmd := v1.Config{Cmd: []string{"/bin/sh", "-c", "true"}}
	tests := []struct {
		name       string
		img        v1.Config
		args       []string
		entrypoint *string
		want       []string
		err        error
	}{
		{"image entrypoint and cmd", img, nil, nil, []string{"/ep", "-x", "cmd", "arg"}, nil},
		{"args replace cmd", img, []string{"a", "b"}, nil, []string{"/ep", "-x", "a", "b"}, nil},
		{"cmd alone", onlyCmd, nil, nil, []string{"/bin/sh", "-c", "true"}, nil},
		{"args replace cmd alone", onlyCmd, []string{"/bin/echo", "hi"}, nil, []string{"/bin/echo", "hi"}, nil},
		{"--entrypoint drops image cmd", img, nil, strp("/bin/sh"), []string{"/bin/sh"}, nil},
		{"--entrypoint with args", img, []string{"-c", "id"}, strp("/bin/sh"), []string{"/bin/sh", "-c", "id"}, nil},
		{"--entrypoint is one word", img, nil, strp("/bin/sh -c"), []string{"/bin/sh -c"}, nil},
		{"--entrypoint '' with args", img, []string{"/bin/true"}, strp(""), []string{"/bin/true"}, nil},
		{"--entrypoint '' alone", img, nil, strp(""), nil, ErrNoCommand},
		{"empty image, no args", v1.Config{}, nil, nil, nil, ErrNoCommand},
		{"empty image, args", v1.Config{}, []string{"/x"}, nil, []string{"/x"}, nil},
		{"entrypoint only", v1.Config{Entrypoint: []string{"/ep"}}, nil, nil, []string{"/ep"}, nil},
		{"empty argv0", v1.Config{Cmd: []string{""}}, nil, nil, nil, ErrNoCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := command(tt.img, tt.args, tt.entrypoint)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("argv = %q, want %q", got, tt.want)
			}
		})
	}
	if got := ErrNoCommand.Error(); got != "no command specified" {
		t.Errorf("ErrNoCommand = %q", got)
	}
}

func TestWorkdir(t *testing.T) {
	tests := []struct{ flag, image, want, err string }{
		{"", "", "/", ""},
		{"", "/app", "/app", ""},
		{"", "app", "/app", ""},
		{"/srv", "/app", "/srv", ""},
		{"/srv/../x/", "", "/x", ""},
		{"rel", "/app", "", "-w rel: must be an absolute path"},
	}
	for _, tt := range tests {
		got, err := workdir(tt.flag, tt.image)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("workdir(%q, %q) err = %v, want %q", tt.flag, tt.image, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("workdir(%q, %q) = %q, %v; want %q", tt.flag, tt.image, got, err, tt.want)
		}
	}
}

func TestHostname(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef"
	tests := []struct {
		flag, id string
		host     bool
		want     string
		err      string
	}{
		{"", id, false, "0123456789ab", ""},
		{"web", id, false, "web", ""},
		{"web", id, true, "web", ""},
		{"", "short", false, "short", ""},
		{"", "", false, "", "no --hostname"},
		{strings.Repeat("h", 65), id, false, "", "longer than 64 bytes"},
		{"a/b", id, false, "", "not a valid host name"},
	}
	for _, tt := range tests {
		got, err := hostname(tt.flag, tt.id, tt.host)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("hostname(%q) err = %v, want %q", tt.flag, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("hostname(%q, %q) = %q, %v; want %q", tt.flag, tt.id, got, err, tt.want)
		}
	}
	// --network host without --hostname: the host's name, as Docker.
	if got, err := hostname("", id, true); err != nil || got != hostHostname() || got == "" {
		t.Errorf("host network hostname = %q, %v; want %q", got, err, hostHostname())
	}
}

func TestStopSignal(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "SIGTERM"}, {"SIGTERM", "SIGTERM"}, {"term", "SIGTERM"}, {"15", "SIGTERM"},
		{"SIGKILL", "SIGKILL"}, {"9", "SIGKILL"}, {"SIGQUIT", "SIGQUIT"}, {"sigwinch", "SIGWINCH"},
		{"SIGRTMIN+3", "SIGRTMIN+3"}, {"RTMIN", "SIGRTMIN+0"}, {"RTMAX-2", "SIGRTMIN+28"},
		{"36", "SIGRTMIN+2"}, {"SIGIOT", "SIGABRT"},
	}
	for _, tt := range tests {
		if got, err := StopSignal(tt.in); err != nil || got != tt.want {
			t.Errorf("StopSignal(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"SIGFOO", "0", "65", "32", "RTMIN-1", "RTMAX+1", "RTMIN+31"} {
		if got, err := StopSignal(bad); err == nil {
			t.Errorf("StopSignal(%q) = %q, want an error", bad, got)
		}
	}
}
