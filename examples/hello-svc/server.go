package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxWork caps /work so a typo cannot pin a connection for hours.
const maxWork = 30 * time.Second

type buildInfo struct {
	Version, Commit, Date string
}

type server struct {
	cfg      config
	info     buildInfo
	started  time.Time
	hostname string
	stats    *statsd // nil when statsd is disabled
	maxWork  time.Duration
}

func newServer(cfg config, info buildInfo, stats *statsd, hostname string) *server {
	return &server{
		cfg:      cfg,
		info:     info,
		started:  time.Now(),
		hostname: hostname,
		stats:    stats,
		maxWork:  maxWork,
	}
}

// handler returns the routes wrapped in statsd instrumentation.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /status", s.status)
	mux.HandleFunc("GET /work", s.work)
	mux.HandleFunc("GET /{$}", s.root)
	return s.instrument(mux)
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprint(w, body)
}

// healthz answers exactly "ok" so deploy checks can compare the body as
// well as the status; HealthFail makes it a deliberately broken release.
func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.HealthFail {
		writeText(w, http.StatusServiceUnavailable, "unhealthy")
		return
	}
	writeText(w, http.StatusOK, "ok")
}

type statusResponse struct {
	Service  string  `json:"service"`
	Version  string  `json:"version"`
	Commit   string  `json:"commit"`
	Date     string  `json:"date"`
	Started  string  `json:"started"`
	UptimeS  float64 `json:"uptime_s"`
	Hostname string  `json:"hostname"`
}

func (s *server) status(w http.ResponseWriter, _ *http.Request) {
	resp := statusResponse{
		Service:  "hello-svc",
		Version:  s.info.Version,
		Commit:   s.info.Commit,
		Date:     s.info.Date,
		Started:  s.started.UTC().Format(time.RFC3339),
		UptimeS:  math.Round(time.Since(s.started).Seconds()*1000) / 1000,
		Hostname: s.hostname,
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *server) root(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, fmt.Sprintf("%s from hello-svc %s\n", s.cfg.Greeting, s.info.Version))
}

// work simulates a slow request; tests use it to prove that a graceful
// shutdown lets in-flight requests finish.
func (s *server) work(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	if err != nil || ms < 0 {
		writeText(w, http.StatusBadRequest, "ms must be a non-negative integer (milliseconds)\n")
		return
	}
	d := time.Duration(ms) * time.Millisecond
	if d > s.maxWork {
		d = s.maxWork
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		return // client went away; nobody to answer
	}
	writeText(w, http.StatusOK, fmt.Sprintf("worked %dms\n", d.Milliseconds()))
}

// statusRecorder remembers the response code for the per-status counter.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.status, r.wrote = http.StatusOK, true
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *server) instrument(next http.Handler) http.Handler {
	if s.stats == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		ms := float64(time.Since(start).Microseconds()) / 1000
		p := s.stats.prefix
		s.stats.send(p + ".requests:1|c")
		s.stats.send(p + ".request_ms:" + strconv.FormatFloat(ms, 'f', 3, 64) + "|ms")
		s.stats.send(p + ".status." + strconv.Itoa(rec.status) + ":1|c")
	})
}

// statsd is a fire-and-forget UDP client. Handlers only ever do a
// non-blocking channel send; one goroutine owns the socket. When the
// queue is full or the collector is down, metrics are dropped: metrics
// must never slow down or fail a request.
type statsd struct {
	addr   string
	prefix string
	queue  chan string
	done   chan struct{}
	wg     sync.WaitGroup
	log    *slog.Logger
}

// statsdRedial limits how often an unresolvable address is retried, so a
// broken DNS name does not turn every request into a lookup.
const statsdRedial = 5 * time.Second

func newStatsd(addr, prefix string, log *slog.Logger) *statsd {
	c := &statsd{
		addr:   addr,
		prefix: prefix,
		queue:  make(chan string, 1024),
		done:   make(chan struct{}),
		log:    log,
	}
	c.wg.Add(1)
	go c.loop()
	return c
}

func (c *statsd) send(metric string) {
	select {
	case c.queue <- metric:
	default: // full: drop
	}
}

// Close flushes what is queued (the last requests before a shutdown) and
// stops the sender.
func (c *statsd) Close() {
	close(c.done)
	c.wg.Wait()
}

func (c *statsd) loop() {
	defer c.wg.Done()
	var (
		conn     net.Conn
		lastDial time.Time
		warned   bool
	)
	write := func(m string) {
		if conn == nil {
			if !lastDial.IsZero() && time.Since(lastDial) < statsdRedial {
				return
			}
			lastDial = time.Now()
			var err error
			// Dialing UDP only resolves the name; nothing goes on the wire.
			conn, err = net.DialTimeout("udp", c.addr, 2*time.Second)
			if err != nil {
				conn = nil
				if !warned && c.log != nil {
					c.log.Warn("statsd unavailable, dropping metrics", "addr", c.addr, "err", err)
					warned = true
				}
				return
			}
		}
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		// Errors (e.g. ECONNREFUSED while no collector listens) are expected.
		_, _ = conn.Write([]byte(m))
	}
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		select {
		case m := <-c.queue:
			write(m)
		case <-c.done:
			for {
				select {
				case m := <-c.queue:
					write(m)
				default:
					return
				}
			}
		}
	}
}
