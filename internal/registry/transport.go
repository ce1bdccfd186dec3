package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// retryStatusCodes are the responses worth asking again for.
var retryStatusCodes = []int{
	http.StatusRequestTimeout,
	http.StatusTooManyRequests,
	http.StatusInternalServerError,
	http.StatusBadGateway,
	http.StatusServiceUnavailable,
	http.StatusGatewayTimeout,
}

// observer hears every response the guard passes on (push uses it to tell a blob the registry
// had from one it mounted).
type observer func(*http.Request, *http.Response)

// guard is the innermost transport: it refuses plain HTTP where Docker would, and retries
// requests it can replay (no body, or one it can rewind) after a connection reset or a
// retryable status, waiting as Retry-After says or by backoff, and never past ctx.
type guard struct {
	inner     http.RoundTripper
	allowHTTP bool
	backoff   remote.Backoff
	log       *slog.Logger
	observe   observer
}

// ErrPlainHTTP is returned for a plain-HTTP request to a registry that is not on this machine
// when --tls-verify=false was not given.
var ErrPlainHTTP = errors.New("plain HTTP refused for a registry that is not on this machine")

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allowHTTP {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%w: %s", ErrPlainHTTP, req.URL.Host)
	}
	b := g.backoff
	for attempt := 1; ; attempt++ {
		resp, err := g.inner.RoundTrip(req)
		wait, retry := g.shouldRetry(req, resp, err, attempt)
		if !retry {
			if err == nil && g.observe != nil {
				g.observe(req, resp)
			}
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if wait == 0 {
			wait = step(&b)
		}
		g.log.Debug("retrying", "method", req.Method, "url", req.URL.Redacted(), "after", wait, "cause", describeAttempt(resp, err))
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		if req, err = rewind(req); err != nil {
			return nil, err
		}
	}
}

// shouldRetry says whether to send req again, and how long the registry asked to wait (0: use
// the backoff).
func (g *guard) shouldRetry(req *http.Request, resp *http.Response, err error, attempt int) (time.Duration, bool) {
	if attempt >= g.backoff.Steps || req.Context().Err() != nil || !replayable(req) {
		return 0, false
	}
	if err != nil {
		return 0, isTransient(err)
	}
	if !slices.Contains(retryStatusCodes, resp.StatusCode) {
		return 0, false
	}
	return retryAfter(resp), true
}

func describeAttempt(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// replayable reports whether req can be sent again: it has no body, or one that can be
// rewound.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Body = body
	return r, nil
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), capped at MaxRetryAfter; 0
// when there is none.
func retryAfter(resp *http.Response) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(max(d, time.Millisecond), MaxRetryAfter)
}

// step returns the next pause of b and advances it.
func step(b *remote.Backoff) time.Duration {
	d := b.Duration
	if b.Jitter > 0 {
		d += time.Duration(rand.Float64() * b.Jitter * float64(d))
	}
	if b.Factor > 0 {
		b.Duration = time.Duration(float64(b.Duration) * b.Factor)
	}
	if b.Cap > 0 && b.Duration > b.Cap {
		b.Duration = b.Cap
	}
	return d
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isTransient reports whether err is worth another try: a connection reset or cut short, a
// timeout, or a registry error it calls temporary (5xx, 429).
func isTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.Temporary() || slices.Contains(retryStatusCodes, te.StatusCode)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
