package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Sentinel errors, checked with errors.Is; the *Error that wraps them names the operation and
// the reference.
var (
	ErrInvalidReference = errors.New("invalid reference")
	ErrUnreachable      = errors.New("cannot reach registry")
	ErrUnauthorized     = errors.New("unauthorized")
	ErrNotFound         = errors.New("not found")
	ErrCertificate      = errors.New("TLS certificate not trusted")
	ErrUnsupported      = errors.New("unsupported manifest")
)

// Error is a failed registry operation. Its message is one line: "pull REF: cause".
type Error struct {
	Op  string // "pull", "push", "login", ...
	Ref string // as the user gave it
	Err error
}

func (e *Error) Error() string {
	msg := e.Op + " " + e.Ref + ": " + e.Err.Error()
	return strings.Join(strings.Fields(msg), " ")
}

func (e *Error) Unwrap() error { return e.Err }

// explain turns what go-containerregistry and net/http return into a short cause that says
// what to do, keeping the original error reachable through errors.As.
func (o *Options) explain(err error, host string) error {
	if err == nil {
		return nil
	}
	var re *Error
	if errors.As(err, &re) {
		return re.Err
	}
	if e, ok := certificateError(err); ok {
		return &cause{ErrCertificate, fmt.Sprintf("TLS certificate of %s not trusted: %v (put its CA in %s, or use --tls-verify=false)",
			host, e, filepath.Join(o.certsDir(), host, "ca.crt")), err}
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return o.explainStatus(te, host)
	}
	if errors.Is(err, ErrPlainHTTP) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return &cause{ErrUnreachable, fmt.Sprintf("%s speaks plain HTTP: use --tls-verify=false to allow it", host), err}
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return &cause{ErrUnreachable, fmt.Sprintf("cannot reach %s: %v", host, innermost(oe)), err}
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return &cause{ErrUnreachable, fmt.Sprintf("cannot reach %s: %v", host, de), err}
	}
	return err
}

func (o *Options) explainStatus(te *transport.Error, host string) error {
	msg := statusText(te)
	switch te.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return &cause{ErrUnauthorized, fmt.Sprintf("%s (kiln login %s)", msg, host), te}
	case http.StatusNotFound:
		return &cause{ErrNotFound, msg, te}
	}
	return &cause{nil, "registry answered " + msg, te}
}

// statusText is the status and the registry's error codes, with a message only where it says
// more than its code.
func statusText(te *transport.Error) string {
	parts := []string{fmt.Sprintf("%d %s", te.StatusCode, http.StatusText(te.StatusCode))}
	for _, d := range te.Errors {
		s := strings.ToLower(strings.ReplaceAll(string(d.Code), "_", " "))
		if d.Message != "" && !sameWords(s, d.Message) {
			s += ": " + d.Message
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ": ")
}

// sameWords reports whether a and b have the same words, in any order and case
// ("manifest unknown", "Unknown manifest").
func sameWords(a, b string) bool {
	wa, wb := strings.Fields(strings.ToLower(a)), strings.Fields(strings.ToLower(b))
	slices.Sort(wa)
	slices.Sort(wb)
	return slices.Equal(wa, wb)
}

func certificateError(err error) (error, bool) {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.As(err, &cv):
		return cv.Err, true
	case errors.As(err, &ua):
		return ua, true
	case errors.As(err, &ci):
		return ci, true
	case errors.As(err, &he):
		return he, true
	}
	return nil, false
}

// innermost is the syscall-level cause of a network error ("connection refused").
func innermost(oe *net.OpError) error {
	err := error(oe)
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// cause is an explained error: a sentinel, a message, and the error it explains.
type cause struct {
	kind error
	msg  string
	err  error
}

func (c *cause) Error() string { return c.msg }

func (c *cause) Unwrap() []error {
	if c.kind == nil {
		return []error{c.err}
	}
	return []error{c.kind, c.err}
}
