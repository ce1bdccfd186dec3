package registry

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestGuardRefusesRemotePlainHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	g := &guard{inner: http.DefaultTransport, backoff: defaultBackoff, log: (&Options{}).logger()}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/", nil)
	if _, err := g.RoundTrip(req); !errors.Is(err, ErrPlainHTTP) {
		t.Errorf("plain HTTP without allowHTTP: %v", err)
	}
	g.allowHTTP = true
	resp, err := g.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestIsLocal(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost:5000": true, "127.0.0.1:5000": true, "127.1.2.3": true, "[::1]:5000": true,
		"10.0.0.1:5000": false, "registry.example:5000": false, "localhost.example": false,
	} {
		if got := isLocal(host); got != want {
			t.Errorf("isLocal(%q) = %v", host, got)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"": 0, "3": 3 * time.Second, "0": time.Millisecond, "86400": MaxRetryAfter,
		time.Now().Add(90 * time.Minute).UTC().Format(http.TimeFormat): MaxRetryAfter,
	} {
		resp := &http.Response{Header: http.Header{}}
		if v != "" {
			resp.Header.Set("Retry-After", v)
		}
		if got := retryAfter(resp); got != want {
			t.Errorf("Retry-After %q: %s, want %s", v, got, want)
		}
	}
}
