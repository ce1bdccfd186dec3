// Package registry moves images between kiln's store and registries that speak the OCI
// distribution API (Docker Hub, distribution's registry, Harbor, GHCR, Quay, ...), and keeps
// registry credentials where Docker and Podman keep theirs. The wire protocol is
// go-containerregistry's remote package; this package adds the store side (layers fetched in
// parallel, verified by the store, kept across a killed pull), TLS per registry, retries that
// honour Retry-After, and errors that fit on one line. It never writes to the terminal:
// progress goes to Options.Progress.
//
// Usage:
//
//	p := registry.Puller{Options: registry.Options{Progress: show}}
//	pulled, err := p.Pull(ctx, st, "127.0.0.1:5000/app:1")   // tagged 127.0.0.1:5000/app:1
//	d, err := p.Ensure(ctx, st, "alpine:3", registry.PullMissing) // for run and build
//
//	s := registry.Pusher{Options: opts}
//	pushed, err := s.Push(ctx, st, "app", "registry.example:5000/team/app:1")
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// DefaultCertsDir holds per-registry TLS material, laid out as Docker's certs.d:
// DefaultCertsDir/HOST:PORT/*.crt are CA certificates trusted for that registry in addition
// to the system roots; *.cert with the *.key of the same name is a client certificate.
const DefaultCertsDir = "/etc/kiln/certs.d"

// Options say how to reach registries. The zero value verifies TLS against the system roots and
// DefaultCertsDir, and uses the credentials `kiln login`, `docker login` or `podman login` saved.
type Options struct {
	// InsecureTLS accepts any server certificate and plain HTTP (--tls-verify=false). Without it,
	// plain HTTP is used only for localhost and loopback addresses, as Docker does.
	InsecureTLS bool
	// CertsDir replaces DefaultCertsDir.
	CertsDir string
	// Keychain finds credentials; nil means Keychain().
	Keychain authn.Keychain
	// Progress, when set, hears about every layer moved. It is called from several goroutines.
	Progress func(Event)
	// Logger gets debug lines about retries and skipped blobs; nil is silent.
	Logger *slog.Logger
	// Jobs is how many blobs move at once; 0 means 6 (as skopeo and Podman).
	Jobs int
	// Backoff paces retries of transient failures; the zero value means 1 s, then 3 s, then 9 s.
	// A Retry-After header from the registry overrides it (up to MaxRetryAfter).
	Backoff remote.Backoff
	// UserAgent is sent with every request; empty means "kiln".
	UserAgent string
}

// MaxRetryAfter caps how long a Retry-After header can make kiln wait before one retry.
const MaxRetryAfter = 60 * time.Second

var defaultBackoff = remote.Backoff{Duration: time.Second, Factor: 3, Jitter: 0.1, Steps: 4}

func (o *Options) jobs() int {
	if o.Jobs > 0 {
		return o.Jobs
	}
	return 6
}

func (o *Options) backoff() remote.Backoff {
	if o.Backoff.Steps == 0 {
		return defaultBackoff
	}
	return o.Backoff
}

func (o *Options) keychain() authn.Keychain {
	if o.Keychain != nil {
		return o.Keychain
	}
	return Keychain()
}

func (o *Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (o *Options) userAgent() string {
	if o.UserAgent != "" {
		return o.UserAgent
	}
	return "kiln"
}

// parseReference parses an image reference as Docker does: "alpine" is
// index.docker.io/library/alpine:latest. Its error says what is wrong with s.
func (o *Options) parseReference(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s, o.nameOptions()...)
	if err == nil {
		return ref, nil
	}
	// ParseReference only says it could not; the parser of the form s has says why.
	why := err
	if strings.Contains(s, "@") {
		_, err = name.NewDigest(s, o.nameOptions()...)
	} else {
		_, err = name.NewTag(s, o.nameOptions()...)
	}
	if err != nil {
		why = err
	}
	return nil, fmt.Errorf("%w: %v", ErrInvalidReference, why)
}

func (o *Options) nameOptions() []name.Option {
	if o.InsecureTLS {
		return []name.Option{name.WeakValidation, name.Insecure}
	}
	return []name.Option{name.WeakValidation}
}

// remoteOptions are the go-containerregistry options for talking to reg.
func (o *Options) remoteOptions(ctx context.Context, reg name.Registry, obs observer) ([]remote.Option, error) {
	rt, err := o.transport(reg, obs)
	if err != nil {
		return nil, err
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(rt),
		remote.WithAuthFromKeychain(o.keychain()),
		remote.WithJobs(o.jobs()),
		// The guard transport retries what can be replayed, waiting as long as the registry
		// asks and no longer than ctx allows. go-containerregistry retries the rest (a
		// broken upload) with short pauses, since its waits ignore ctx.
		remote.WithRetryStatusCodes(),
		remote.WithRetryBackoff(remote.Backoff{Duration: 100 * time.Millisecond, Factor: 3, Steps: 3}),
		remote.WithRetryPredicate(func(err error) bool { return ctx.Err() == nil && isTransient(err) }),
		remote.WithUserAgent(o.userAgent()),
	}, nil
}

// transport is the HTTP transport for reg: go-containerregistry's default with reg's TLS
// settings, Docker's plain-HTTP rule, and Retry-After handling. go-containerregistry wraps it
// in its own retries (backoff) and authentication.
func (o *Options) transport(reg name.Registry, obs observer) (http.RoundTripper, error) {
	base, ok := remote.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("go-containerregistry's default transport is not an *http.Transport")
	}
	t := base.Clone()
	tc, err := o.tlsConfig(reg.RegistryStr())
	if err != nil {
		return nil, err
	}
	t.TLSClientConfig = tc
	return &guard{
		inner:     t,
		allowHTTP: o.InsecureTLS || isLocal(reg.RegistryStr()),
		backoff:   o.backoff(),
		log:       o.logger(),
		observe:   obs,
	}, nil
}

func (o *Options) certsDir() string {
	if o.CertsDir != "" {
		return o.CertsDir
	}
	return DefaultCertsDir
}

// tlsConfig adds the CA and client certificates in certs.d/HOST:PORT to the defaults.
func (o *Options) tlsConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.InsecureTLS {
		tc.InsecureSkipVerify = true
		return tc, nil
	}
	dir := filepath.Join(o.certsDir(), host)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return tc, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry %s: certificates: %w", host, err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch filepath.Ext(e.Name()) {
		case ".crt":
			if tc.RootCAs == nil {
				if tc.RootCAs, err = x509.SystemCertPool(); err != nil {
					tc.RootCAs = x509.NewCertPool()
				}
			}
			pem, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("registry %s: %w", host, err)
			}
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("registry %s: %s: no PEM certificate", host, p)
			}
		case ".cert":
			key := strings.TrimSuffix(p, ".cert") + ".key"
			pair, err := tls.LoadX509KeyPair(p, key)
			if err != nil {
				return nil, fmt.Errorf("registry %s: client certificate: %w", host, err)
			}
			tc.Certificates = append(tc.Certificates, pair)
		}
	}
	return tc, nil
}

// isLocal reports whether host[:port] is this machine: Docker talks plain HTTP to those.
func isLocal(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
