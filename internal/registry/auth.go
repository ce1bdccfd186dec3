package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config/configfile"
	clitypes "github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Credentials live where Docker and Podman keep them, read and written with Docker's own config
// code: the "auths" of $REGISTRY_AUTH_FILE when it is set (Podman's variable), else of
// config.json in $DOCKER_CONFIG or ~/.docker. A credential helper named there (credsStore,
// credHelpers) stores and finds them instead, as with docker login.

// AuthFile is the file `kiln login` writes to.
func AuthFile() string {
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		return p
	}
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".docker")
	}
	return filepath.Join(dir, "config.json")
}

func loadAuthFile() (*configfile.ConfigFile, error) {
	path := AuthFile()
	cf := configfile.New(path)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	defer f.Close()
	if err := cf.LoadFromReader(f); err != nil {
		return nil, fmt.Errorf("credentials: %s: %w", path, err)
	}
	return cf, nil
}

// Keychain finds credentials in AuthFile (and its credential helpers) first, then wherever
// go-containerregistry's default keychain looks (Docker's config, Podman's auth.json).
func Keychain() authn.Keychain {
	return authn.NewMultiKeychain(fileKeychain{}, authn.DefaultKeychain)
}

type fileKeychain struct{}

func (fileKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	cf, err := loadAuthFile()
	if err != nil {
		return nil, err
	}
	for _, key := range []string{target.String(), target.RegistryStr()} {
		ac, err := cf.GetAuthConfig(authKey(key))
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", key, err)
		}
		if ac.Username != "" || ac.Password != "" || ac.IdentityToken != "" || ac.RegistryToken != "" {
			return authn.FromConfig(authn.AuthConfig{
				Username: ac.Username, Password: ac.Password,
				IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
			}), nil
		}
	}
	return authn.Anonymous, nil
}

// authKey is the key credentials of host are filed under: Docker Hub's is historical.
func authKey(host string) string {
	if host == name.DefaultRegistry || host == "docker.io" {
		return authn.DefaultAuthKey
	}
	return host
}

// RegistryHost normalises what `kiln login` is given ("host:port", "https://host/v2/",
// "docker.io") to the registry's host[:port].
func RegistryHost(server string) (string, error) {
	s := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	s = strings.TrimSuffix(strings.TrimSuffix(s, "/"), "/v2")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	reg, err := name.NewRegistry(s, name.WeakValidation)
	if err != nil || s == "" {
		return "", fmt.Errorf("%w: registry %q", ErrInvalidReference, server)
	}
	return reg.RegistryStr(), nil
}

// Login checks username and password against the registry at server and, when it accepts
// them, saves them (see AuthFile). It returns the host it saved them for and where.
func (o *Options) Login(ctx context.Context, server, username, password string) (host, where string, err error) {
	host, err = RegistryHost(server)
	if err != nil {
		return "", "", &Error{Op: "login", Ref: server, Err: err}
	}
	if err := o.checkLogin(ctx, host, username, password); err != nil {
		err = o.explain(err, host)
		if errors.Is(err, ErrUnauthorized) {
			err = &cause{ErrUnauthorized, "the registry refused the user name or password", err}
		}
		return "", "", &Error{Op: "login", Ref: host, Err: err}
	}
	where, err = saveLogin(host, username, password)
	if err != nil {
		return "", "", &Error{Op: "login", Ref: host, Err: err}
	}
	return host, where, nil
}

// checkLogin asks the registry's /v2/ with the credentials: through a token exchange when the
// registry uses tokens (a bad password fails there), else with basic auth.
func (o *Options) checkLogin(ctx context.Context, host, username, password string) error {
	reg, err := name.NewRegistry(host, o.nameOptions()...)
	if err != nil {
		return err
	}
	base, err := o.transport(reg, nil)
	if err != nil {
		return err
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: username, Password: password})
	rt, err := transport.NewWithContext(ctx, reg, auth, base, nil)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return transport.CheckError(resp, http.StatusOK)
}

func saveLogin(host, username, password string) (string, error) {
	cf, err := loadAuthFile()
	if err != nil {
		return "", err
	}
	key := authKey(host)
	ac := clitypes.AuthConfig{Username: username, Password: password, ServerAddress: key}
	helper := helperFor(cf, key)
	if helper != "" {
		if err := cf.GetCredentialsStore(key).Store(ac); err != nil {
			return "", fmt.Errorf("save credentials: %w", err)
		}
	} else {
		// What Docker's file store does, without the warning it prints on os.Stderr.
		cf.GetAuthConfigs()[key] = ac
	}
	if err := cf.Save(); err != nil {
		return "", fmt.Errorf("save credentials: %w", err)
	}
	if helper != "" {
		return "docker-credential-" + helper, nil
	}
	return cf.Filename, nil
}

// Logout removes the credentials saved for server. It reports false when there were none.
func Logout(server string) (removed bool, err error) {
	host, err := RegistryHost(server)
	if err != nil {
		return false, &Error{Op: "logout", Ref: server, Err: err}
	}
	cf, err := loadAuthFile()
	if err != nil {
		return false, &Error{Op: "logout", Ref: host, Err: err}
	}
	key := authKey(host)
	_, inFile := cf.AuthConfigs[key]
	helper := helperFor(cf, key)
	if !inFile && helper == "" {
		return false, nil
	}
	if helper != "" {
		ac, err := cf.GetAuthConfig(key)
		if err != nil {
			return false, &Error{Op: "logout", Ref: host, Err: err}
		}
		if ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" && !inFile {
			return false, nil
		}
	}
	if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
		return false, &Error{Op: "logout", Ref: host, Err: err}
	}
	// The file store erases from cf; a helper leaves an empty entry to drop.
	delete(cf.AuthConfigs, key)
	if err := cf.Save(); err != nil {
		return false, &Error{Op: "logout", Ref: host, Err: err}
	}
	return true, nil
}

func helperFor(cf *configfile.ConfigFile, key string) string {
	if h, ok := cf.CredentialHelpers[key]; ok {
		return h
	}
	return cf.CredentialsStore
}
