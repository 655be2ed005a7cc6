package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) string {
	return func(key string) string { return vars[key] }
}

func TestListenAddr(t *testing.T) {
	cases := []struct {
		vars    map[string]string
		want    string
		wantErr string
	}{
		{map[string]string{}, ":8080", ""},
		{map[string]string{"PORT": "9090"}, ":9090", ""},
		{map[string]string{"PORT": "9090", "QUOTE_LISTEN": "127.0.0.1:7000"}, "127.0.0.1:7000", ""},
		{map[string]string{"PORT": "http"}, "", `PORT="http" is not a port number`},
		{map[string]string{"PORT": "70000"}, "", "is not a port number"},
	}
	for _, c := range cases {
		got, err := listenAddr(env(c.vars))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("listenAddr(%v) error = %v, want %q", c.vars, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("listenAddr(%v) = %q, %v; want %q", c.vars, got, err, c.want)
		}
	}
}

func TestHandler(t *testing.T) {
	version = "1.2.3"
	srv := httptest.NewServer(handler(func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }))
	defer srv.Close()
	for path, want := range map[string]string{
		"/-/ready": "ready\n",
		"/version": "1.2.3\n",
		"/":        quotes[1] + "\n",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, body, want)
		}
	}
	resp, err := http.Get(srv.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /nope = %d, want 404", resp.StatusCode)
	}
}

func TestRunStopsOnRequestAndReportsBusyPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var stderr bytes.Buffer
	code := run(env(map[string]string{"QUOTE_LISTEN": taken.Addr().String()}), io.Discard, &stderr, nil)
	if code != 1 || !strings.Contains(stderr.String(), "address already in use") {
		t.Errorf("run on a busy port = %d %q, want 1 and 'address already in use'", code, stderr.String())
	}

	stop := make(chan struct{})
	done := make(chan int)
	go func() { done <- run(env(map[string]string{"QUOTE_LISTEN": "127.0.0.1:0"}), io.Discard, io.Discard, stop) }()
	close(stop)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run after stop = %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
}
