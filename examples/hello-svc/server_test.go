package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testInfo = buildInfo{Version: "1.214", Commit: "abc1234", Date: "2024-05-06T07:08:09Z"}

func testConfig() config {
	cfg, err := loadConfig(envMap(nil), "")
	if err != nil {
		panic(err)
	}
	return cfg
}

// do sends one request through the full handler chain.
func do(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestHealthz(t *testing.T) {
	h := newServer(testConfig(), testInfo, nil, "h").handler()
	rec := do(t, h, "GET", "/healthz")
	if rec.Code != 200 || rec.Body.String() != "ok" {
		t.Fatalf("GET /healthz = %d %q, want 200 \"ok\"", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	if rec := do(t, h, "HEAD", "/healthz"); rec.Code != 200 {
		t.Errorf("HEAD /healthz = %d", rec.Code)
	}
	if rec := do(t, h, "POST", "/healthz"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", rec.Code)
	}
}

func TestHealthzFailFromEnv(t *testing.T) {
	cfg, err := loadConfig(envMap(map[string]string{"HELLO_HEALTH_FAIL": "true"}), "")
	if err != nil {
		t.Fatal(err)
	}
	h := newServer(cfg, testInfo, nil, "h").handler()
	if rec := do(t, h, "GET", "/healthz"); rec.Code != 503 {
		t.Fatalf("GET /healthz with HELLO_HEALTH_FAIL=true = %d, want 503", rec.Code)
	}
	// Only health fails; the service itself still answers.
	if rec := do(t, h, "GET", "/"); rec.Code != 200 {
		t.Fatalf("GET / = %d", rec.Code)
	}
}

func TestStatus(t *testing.T) {
	before := time.Now().Add(-time.Second)
	h := newServer(testConfig(), testInfo, nil, "web-1").handler()
	rec := do(t, h, "GET", "/status")
	if rec.Code != 200 {
		t.Fatalf("GET /status = %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "commit,date,hostname,service,started,uptime_s,version" {
		t.Errorf("keys = %v", keys)
	}
	for k, want := range map[string]string{
		"service": "hello-svc", "version": "1.214", "commit": "abc1234",
		"date": "2024-05-06T07:08:09Z", "hostname": "web-1",
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %q", k, got[k], want)
		}
	}
	started, err := time.Parse(time.RFC3339, got["started"].(string))
	if err != nil || started.Before(before.Truncate(time.Second)) || started.After(time.Now()) {
		t.Errorf("started = %v (%v)", got["started"], err)
	}
	if up, ok := got["uptime_s"].(float64); !ok || up < 0 || up > 5 {
		t.Errorf("uptime_s = %v", got["uptime_s"])
	}
}

func TestRoot(t *testing.T) {
	cfg := testConfig()
	cfg.Greeting = "moin"
	h := newServer(cfg, testInfo, nil, "h").handler()
	rec := do(t, h, "GET", "/")
	if rec.Code != 200 || rec.Body.String() != "moin from hello-svc 1.214\n" {
		t.Fatalf("GET / = %d %q", rec.Code, rec.Body)
	}
	if rec := do(t, h, "GET", "/nope"); rec.Code != 404 {
		t.Fatalf("GET /nope = %d, want 404", rec.Code)
	}
}

func TestWork(t *testing.T) {
	s := newServer(testConfig(), testInfo, nil, "h")
	s.maxWork = 50 * time.Millisecond
	h := s.handler()
	for _, q := range []string{"", "?ms=", "?ms=abc", "?ms=-1", "?ms=1.5", "?ms=99999999999999999999999"} {
		if rec := do(t, h, "GET", "/work"+q); rec.Code != 400 {
			t.Errorf("GET /work%s = %d, want 400", q, rec.Code)
		}
	}

	start := time.Now()
	rec := do(t, h, "GET", "/work?ms=20")
	if rec.Code != 200 || rec.Body.String() != "worked 20ms\n" {
		t.Fatalf("GET /work?ms=20 = %d %q", rec.Code, rec.Body)
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Errorf("/work?ms=20 returned after %v", el)
	}

	// Above the cap the request is clamped, not rejected.
	start = time.Now()
	rec = do(t, h, "GET", "/work?ms=100000")
	if rec.Code != 200 || rec.Body.String() != "worked 50ms\n" {
		t.Fatalf("GET /work?ms=100000 = %d %q", rec.Code, rec.Body)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("capped /work took %v", el)
	}
}

func TestWorkDefaultCap(t *testing.T) {
	if s := newServer(testConfig(), testInfo, nil, "h"); s.maxWork != 30*time.Second {
		t.Fatalf("maxWork = %v", s.maxWork)
	}
}

// readPackets collects n UDP datagrams or fails after a deadline.
func readPackets(t *testing.T, pc net.PacketConn, n int) []string {
	t.Helper()
	var out []string
	buf := make([]byte, 2048)
	_ = pc.SetReadDeadline(time.Now().Add(3 * time.Second))
	for len(out) < n {
		k, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %v: %v", out, err)
		}
		out = append(out, string(buf[:k]))
	}
	return out
}

func TestStatsdPackets(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	cfg := testConfig()
	cfg.HealthFail = true
	stats := newStatsd(pc.LocalAddr().String(), "apps.hello", nil)
	defer stats.Close()
	h := newServer(cfg, testInfo, stats, "h").handler()

	timing := regexp.MustCompile(`^apps\.hello\.request_ms:\d+\.\d{3}\|ms$`)
	for _, c := range []struct {
		path string
		code int
	}{{"/", 200}, {"/healthz", 503}, {"/missing", 404}} {
		if rec := do(t, h, "GET", c.path); rec.Code != c.code {
			t.Fatalf("GET %s = %d, want %d", c.path, rec.Code, c.code)
		}
		got := readPackets(t, pc, 3)
		if got[0] != "apps.hello.requests:1|c" {
			t.Errorf("%s: packet 0 = %q", c.path, got[0])
		}
		if !timing.MatchString(got[1]) {
			t.Errorf("%s: packet 1 = %q, want %s", c.path, got[1], timing)
		}
		if want := "apps.hello.status." + strconv.Itoa(c.code) + ":1|c"; got[2] != want {
			t.Errorf("%s: packet 2 = %q, want %q", c.path, got[2], want)
		}
	}
}

func TestStatsdDownDoesNotHurtRequests(t *testing.T) {
	// A UDP port with nobody behind it: writes get ECONNREFUSED.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()

	stats := newStatsd(addr, "hello_svc", nil)
	defer stats.Close()
	h := newServer(testConfig(), testInfo, stats, "h").handler()
	start := time.Now()
	for i := 0; i < 200; i++ {
		if rec := do(t, h, "GET", "/healthz"); rec.Code != 200 {
			t.Fatalf("request %d = %d", i, rec.Code)
		}
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("200 requests with statsd down took %v", el)
	}
}

func TestStatsdNeverBlocks(t *testing.T) {
	// No sender goroutine and no buffer: every send must be dropped at once.
	stuck := &statsd{prefix: "hello_svc", queue: make(chan string)}
	h := newServer(testConfig(), testInfo, stuck, "h").handler()
	done := make(chan int, 1)
	go func() { done <- do(t, h, "GET", "/healthz").Code }()
	select {
	case code := <-done:
		if code != 200 {
			t.Fatalf("code = %d", code)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("request blocked on a full statsd queue")
	}
}

func TestStatsdUnresolvable(t *testing.T) {
	// An invalid name fails to resolve without touching the network.
	var logs bytes.Buffer
	stats := newStatsd("no such host.invalid:8125", "hello_svc", slog.New(slog.NewTextHandler(&logs, nil)))
	h := newServer(testConfig(), testInfo, stats, "h").handler()
	for i := 0; i < 3; i++ {
		if rec := do(t, h, "GET", "/healthz"); rec.Code != 200 {
			t.Fatalf("code = %d", rec.Code)
		}
	}
	stats.Close()
	// Warned once, not once per request or per metric.
	if n := strings.Count(logs.String(), "statsd unavailable"); n != 1 {
		t.Fatalf("%d warnings:\n%s", n, logs.String())
	}
}
