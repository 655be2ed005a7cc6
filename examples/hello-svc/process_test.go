package main

// Tests that need a real process: signals, exit codes, inherited sockets.
// The test binary re-executes itself as the service (HELLO_SVC_TEST_MAIN=1),
// so no go toolchain is needed for them; TestStampedBuild additionally
// builds the real binary to check -ldflags stamping.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const childSwitch = "HELLO_SVC_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childSwitch) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// childEnv is the parent's environment without anything that would
// change the service's behaviour, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HELLO_") || strings.HasPrefix(kv, "LISTEN_") || strings.HasPrefix(kv, "JOURNAL_STREAM=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// selfCmd runs this test binary as the service.
func selfCmd(args []string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = childEnv(append([]string{childSwitch + "=1"}, env...)...)
	return cmd
}

// logWriter collects the child's stderr and reports the "started" line.
type logWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	started chan string // the started line, once
	sent    bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		for _, line := range strings.Split(w.buf.String(), "\n") {
			if strings.Contains(line, `msg="hello-svc started"`) {
				w.started <- line
				w.sent = true
				break
			}
		}
	}
	return len(p), nil
}

func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

type child struct {
	cmd     *exec.Cmd
	log     *logWriter
	started string // the "hello-svc started" log line
	addr    string // from that line
	exited  chan struct{}
	waitErr error
}

var addrRe = regexp.MustCompile(` addr=(\S+)`)

// startChild starts cmd and waits until it logs that it is serving.
func startChild(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	c := &child{cmd: cmd, log: &logWriter{started: make(chan string, 1)}, exited: make(chan struct{})}
	cmd.Stderr = c.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = cmd.Process.Kill()
			<-c.exited
		}
	})
	select {
	case c.started = <-c.log.started:
	case <-c.exited:
		t.Fatalf("service exited before serving: %v\n%s", c.waitErr, c.log)
	case <-time.After(10 * time.Second):
		t.Fatalf("service did not start:\n%s", c.log)
	}
	m := addrRe.FindStringSubmatch(c.started)
	if m == nil {
		t.Fatalf("no addr in %q", c.started)
	}
	c.addr = m[1]
	return c
}

// wait returns the exit code, failing if the child does not exit in time.
func (c *child) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(timeout):
		t.Fatalf("service still running after %v:\n%s", timeout, c.log)
	}
	var ee *exec.ExitError
	if errors.As(c.waitErr, &ee) {
		return ee.ExitCode()
	}
	if c.waitErr != nil {
		t.Fatal(c.waitErr)
	}
	return 0
}

func (c *child) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestSocketActivation(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	// Our copy of the socket is no longer needed once f holds a dup.
	ln.Close()

	// HELLO_LISTEN points at a port that is taken: the service must not
	// even try it when a socket is handed over.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	cmd := selfCmd(nil, "LISTEN_FDS=1", "LISTEN_FDNAMES=hello-svc.socket", "HELLO_LISTEN="+busy.Addr().String())
	cmd.ExtraFiles = []*os.File{f} // becomes fd 3
	c := startChild(t, cmd)
	f.Close()

	if !strings.Contains(c.started, "mode=socket-activation") || c.addr != addr {
		t.Fatalf("started line %q, want mode=socket-activation addr=%s", c.started, addr)
	}
	if code, body := get(t, "http://"+addr+"/healthz"); code != 200 || body != "ok" {
		t.Fatalf("GET /healthz via inherited socket = %d %q", code, body)
	}
	c.signal(t, syscall.SIGINT)
	if code := c.wait(t, 5*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGINT:\n%s", code, c.log)
	}
}

func TestSocketActivationForAnotherPID(t *testing.T) {
	t.Parallel()
	// LISTEN_PID names another process (pid 1): ignore LISTEN_FDS, listen ourselves.
	c := startChild(t, selfCmd(nil, "LISTEN_FDS=1", "LISTEN_PID=1", "HELLO_LISTEN=127.0.0.1:0"))
	if !strings.Contains(c.started, "mode=listen") {
		t.Fatalf("started line %q, want mode=listen", c.started)
	}
	if code, _ := get(t, "http://"+c.addr+"/healthz"); code != 200 {
		t.Fatalf("GET /healthz = %d", code)
	}
	c.signal(t, syscall.SIGTERM)
	if code := c.wait(t, 5*time.Second); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, c.log)
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	c := startChild(t, selfCmd(nil, "HELLO_LISTEN=127.0.0.1:0", "HELLO_SHUTDOWN_TIMEOUT=10s"))

	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	start := time.Now()
	go func() {
		resp, err := httpClient.Get("http://" + c.addr + "/work?ms=1500")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, string(b), err}
	}()
	time.Sleep(300 * time.Millisecond) // let the request reach the handler
	c.signal(t, syscall.SIGTERM)

	// The listener closes at once, while /work is still running.
	deadline := time.Now().Add(time.Second)
	for {
		conn, err := net.DialTimeout("tcp", c.addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections 1s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}

	r := <-res
	if r.err != nil || r.code != 200 || r.body != "worked 1500ms\n" {
		t.Fatalf("in-flight /work during shutdown: %d %q %v\n%s", r.code, r.body, r.err, c.log)
	}
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Fatalf("/work answered after %v", el)
	}
	if code := c.wait(t, 5*time.Second); code != 0 {
		t.Fatalf("exit code %d after clean shutdown:\n%s", code, c.log)
	}
	logs := c.log.String()
	for _, want := range []string{`msg="hello-svc stopping" signal=terminated`, `msg="hello-svc stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if n := strings.Count(strings.TrimSpace(logs), "\n") + 1; n != 3 {
		t.Errorf("%d log lines, want 3 (start, stopping, stopped):\n%s", n, logs)
	}
}

func TestShutdownTimeout(t *testing.T) {
	t.Parallel()
	c := startChild(t, selfCmd(nil, "HELLO_LISTEN=127.0.0.1:0", "HELLO_SHUTDOWN_TIMEOUT=300ms"))
	errc := make(chan error, 1)
	go func() {
		resp, err := httpClient.Get("http://" + c.addr + "/work?ms=10000")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	c.signal(t, syscall.SIGTERM)
	if code := c.wait(t, 5*time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1 when requests are cut off:\n%s", code, c.log)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("took %v to give up with a 300ms timeout", el)
	}
	if err := <-errc; err == nil {
		t.Fatal("cut-off request succeeded")
	}
	if !strings.Contains(c.log.String(), "in-flight requests were cut off") {
		t.Fatalf("log:\n%s", c.log)
	}
}

func TestStartupErrors(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	cases := []struct {
		name string
		args []string
		env  []string
		code int
		msg  string
	}{
		{"bad duration", nil, []string{"HELLO_SHUTDOWN_TIMEOUT=soon"}, 2, "HELLO_SHUTDOWN_TIMEOUT"},
		{"bad listen", nil, []string{"HELLO_LISTEN=nonsense"}, 2, "HELLO_LISTEN"},
		{"bad statsd", nil, []string{"HELLO_STATSD_ADDR=statsd"}, 2, "HELLO_STATSD_ADDR"},
		{"bad health flag", nil, []string{"HELLO_HEALTH_FAIL=maybe"}, 2, "HELLO_HEALTH_FAIL"},
		{"bad LISTEN_FDS", nil, []string{"LISTEN_FDS=x", "HELLO_LISTEN=127.0.0.1:0"}, 1, "LISTEN_FDS"},
		{"port taken", nil, []string{"HELLO_LISTEN=" + busy.Addr().String()}, 1, "address already in use"},
		{"unknown flag", []string{"-port=1"}, nil, 2, "flag provided but not defined"},
		{"stray argument", []string{"serve"}, nil, 2, "unexpected argument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := selfCmd(c.args, c.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != c.code {
				t.Fatalf("err = %v, want exit code %d\nstderr: %s", err, c.code, &stderr)
			}
			if !strings.Contains(stderr.String(), c.msg) {
				t.Fatalf("stderr %q lacks %q", &stderr, c.msg)
			}
		})
	}
}

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	out, err := selfCmd([]string{"-version"}).Output()
	if err != nil || string(out) != "dev\n" {
		t.Fatalf("-version = %q, %v", out, err)
	}
}

// TestStampedBuild builds the real binary with -ldflags -X and checks that
// the stamped values reach -version and /status, and that a baked-in
// healthFail makes /healthz fail.
func TestStampedBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	t.Parallel()
	// go test puts its own GOROOT/bin first on PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	bin := filepath.Join(t.TempDir(), "hello-svc")
	ldflags := "-s -w -X main.version=1.214 -X main.commit=abc1234 -X main.date=2024-05-06T07:08:09Z -X main.healthFail=true"
	build := exec.Command(gobin, "build", "-ldflags", ldflags, "-o", bin, ".")
	build.Env = append(childEnv(), "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	out, err := exec.Command(bin, "-version").Output()
	if err != nil || string(out) != "1.214\n" {
		t.Fatalf("-version = %q, %v", out, err)
	}

	cmd := exec.Command(bin)
	cmd.Env = childEnv("HELLO_LISTEN=127.0.0.1:0")
	c := startChild(t, cmd)
	if !strings.Contains(c.started, "health_fail=true") {
		t.Errorf("started line %q", c.started)
	}
	if code, _ := get(t, "http://"+c.addr+"/healthz"); code != 503 {
		t.Errorf("GET /healthz on a healthFail build = %d, want 503", code)
	}
	_, body := get(t, "http://"+c.addr+"/status")
	var st statusResponse
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	if st.Version != "1.214" || st.Commit != "abc1234" || st.Date != "2024-05-06T07:08:09Z" {
		t.Errorf("/status = %+v", st)
	}
	c.signal(t, syscall.SIGTERM)
	if code := c.wait(t, 5*time.Second); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, c.log)
	}
}
