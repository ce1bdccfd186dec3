package registry_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/kiln-project/kiln/internal/registry"
)

// isolate points every credential lookup at a fresh directory, so that the tests never read
// or write the credentials of whoever runs them.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("DOCKER_CONFIG", filepath.Join(dir, "docker"))
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(dir, "run"))
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	return dir
}

// lockedRegistry is an in-memory registry that wants basic auth user:secret.
func lockedRegistry(t *testing.T) string {
	t.Helper()
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "secret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="kiln-test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestLoginPushLogout(t *testing.T) {
	dir := isolate(t)
	host := lockedRegistry(t)
	st := newStore(t)
	commit(t, st, ociImage(t, 1, 1024), "app:1")
	ctx := context.Background()
	push := func() error {
		_, err := (&registry.Pusher{Options: fast}).Push(ctx, st, "app:1", host+"/app:1")
		return err
	}
	if err := push(); !errors.Is(err, registry.ErrUnauthorized) {
		t.Fatalf("push without login: %v, want ErrUnauthorized", err)
	}
	if _, _, err := fast.Login(ctx, host, "user", "wrong"); !errors.Is(err, registry.ErrUnauthorized) {
		t.Fatalf("login with a wrong password: %v", err)
	}
	config := filepath.Join(dir, "docker", "config.json")
	if _, err := os.Stat(config); err == nil {
		t.Fatal("a failed login wrote config.json")
	}
	got, where, err := fast.Login(ctx, "http://"+host+"/v2/", "user", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if got != host || where != config {
		t.Errorf("login saved for %s in %s, want %s in %s", got, where, host, config)
	}
	var cf struct {
		Auths map[string]struct{ Auth string }
	}
	b, _ := os.ReadFile(config)
	if err := json.Unmarshal(b, &cf); err != nil || cf.Auths[host].Auth != "dXNlcjpzZWNyZXQ=" {
		t.Errorf("config.json: %s", b)
	}
	if fi, _ := os.Stat(config); fi.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode %v, want 0600", fi.Mode().Perm())
	}
	if err := push(); err != nil {
		t.Fatalf("push after login: %v", err)
	}
	removed, err := registry.Logout(host)
	if err != nil || !removed {
		t.Fatalf("logout: %v, %v", removed, err)
	}
	if b, _ := os.ReadFile(config); strings.Contains(string(b), host) {
		t.Errorf("config.json still names %s: %s", host, b)
	}
	if removed, err := registry.Logout(host); err != nil || removed {
		t.Errorf("second logout: %v, %v", removed, err)
	}
}

// With REGISTRY_AUTH_FILE set (Podman's variable), logins go there.
func TestLoginRegistryAuthFile(t *testing.T) {
	dir := isolate(t)
	authFile := filepath.Join(dir, "containers", "auth.json")
	t.Setenv("REGISTRY_AUTH_FILE", authFile)
	host := lockedRegistry(t)
	if _, where, err := fast.Login(context.Background(), host, "user", "secret"); err != nil || where != authFile {
		t.Fatalf("login: %s, %v", where, err)
	}
	b, err := os.ReadFile(authFile)
	if err != nil || !strings.Contains(string(b), host) {
		t.Fatalf("%s: %s, %v", authFile, b, err)
	}
	st := newStore(t)
	commit(t, st, ociImage(t, 1, 512), "app:1")
	if _, err := (&registry.Pusher{Options: fast}).Push(context.Background(), st, "app:1", host+"/app:1"); err != nil {
		t.Fatalf("push with REGISTRY_AUTH_FILE credentials: %v", err)
	}
}

// A credential helper named in config.json (credHelpers) is asked for the password.
func TestCredentialHelper(t *testing.T) {
	dir := isolate(t)
	host := lockedRegistry(t)
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	helper := "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"user\",\"Secret\":\"secret\"}' \"$server\"\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-kilntest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	os.MkdirAll(filepath.Join(dir, "docker"), 0o700)
	cfg := `{"credHelpers":{"` + host + `":"kilntest"}}`
	if err := os.WriteFile(filepath.Join(dir, "docker", "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	commit(t, st, ociImage(t, 1, 512), "app:1")
	if _, err := (&registry.Pusher{Options: fast}).Push(context.Background(), st, "app:1", host+"/app:1"); err != nil {
		t.Fatalf("push with helper credentials: %v", err)
	}
}

// TLS: a registry with a certificate from a CA the system does not know works once its CA is
// in CertsDir/HOST:PORT/ca.crt, fails with ErrCertificate without it, and works with InsecureTLS.
func TestTLSCertsDir(t *testing.T) {
	isolate(t)
	srv := httptest.NewUnstartedServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	st := newStore(t)
	commit(t, st, ociImage(t, 1, 512), "app:1")
	ref := host + "/app:1"
	push := func(o registry.Options) error {
		o.Backoff = fast.Backoff
		_, err := (&registry.Pusher{Options: o}).Push(context.Background(), st, "app:1", ref)
		return err
	}

	certs := t.TempDir()
	err := push(registry.Options{CertsDir: certs})
	if !errors.Is(err, registry.ErrCertificate) {
		t.Fatalf("push without the CA: %v, want ErrCertificate", err)
	}
	if want := filepath.Join(certs, host, "ca.crt"); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say where the CA goes (%s)", err, want)
	}
	t.Log(err)
	if err := push(registry.Options{CertsDir: certs, InsecureTLS: true}); err != nil {
		t.Fatalf("push with InsecureTLS: %v", err)
	}
	os.MkdirAll(filepath.Join(certs, host), 0o755)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(certs, host, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := push(registry.Options{CertsDir: certs}); err != nil {
		t.Fatalf("push with the CA in certs.d: %v", err)
	}
	p := registry.Puller{Options: registry.Options{CertsDir: certs, Backoff: fast.Backoff}}
	if _, err := p.Pull(context.Background(), newStore(t), ref); err != nil {
		t.Fatalf("pull with the CA in certs.d: %v", err)
	}
}
