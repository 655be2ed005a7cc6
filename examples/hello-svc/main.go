// Command hello-svc is a tiny HTTP service used to exercise the
// goship.deploy roles: it is built into a .deb, run under systemd
// (optionally socket-activated) and rolled out release by release.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Stamped at build time: -ldflags "-X main.version=1.214 -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
	// healthFail="true" bakes a failing /healthz into the binary, so tests
	// can ship a deliberately broken release without touching its unit.
	healthFail = ""
	// crashAfter="3s" bakes a crash that long after start into the binary: a release that
	// passes its first health check and then crash-loops, for the fault tests.
	crashAfter = ""
)

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1 // runtime failure, incl. a shutdown that had to drop requests
	exitConfig = 2 // bad flags or environment
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hello-svc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: hello-svc [-version]\nconfiguration is read from HELLO_* environment variables (see README.md)")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hello-svc: unexpected argument %q; configuration comes from HELLO_* environment variables\n", fs.Arg(0))
		return exitConfig
	}
	if *showVersion {
		fmt.Fprintln(stdout, version)
		return exitOK
	}

	cfg, err := loadConfig(os.Getenv, healthFail)
	if err != nil {
		// One line, so journald shows the whole story in one entry.
		fmt.Fprintf(stderr, "hello-svc: invalid configuration: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		return exitConfig
	}
	log := newLogger(stderr)
	if crashAfter != "" {
		delay, err := time.ParseDuration(crashAfter)
		if err != nil {
			fmt.Fprintf(stderr, "hello-svc: invalid build: main.crashAfter (ldflags) %q: %v\n", crashAfter, err)
			return exitConfig
		}
		time.AfterFunc(delay, func() {
			log.Error("hello-svc crashing (main.crashAfter baked into this build)", "after", delay.String())
			os.Exit(exitFail)
		})
	}

	// Subscribe before listening: a SIGTERM that arrives as soon as the
	// socket is up must lead to a graceful stop, not the default kill.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	ln, mode, err := openListener(cfg.Listen)
	if err != nil {
		fmt.Fprintf(stderr, "hello-svc: %v\n", err)
		return exitFail
	}

	var stats *statsd
	statsdDesc := "disabled"
	if cfg.StatsdAddr != "" {
		stats = newStatsd(cfg.StatsdAddr, cfg.StatsdPrefix, log)
		defer stats.Close() // runs after Shutdown, so the last metrics go out
		statsdDesc = cfg.StatsdAddr
	}

	hostname, err := os.Hostname()
	if err != nil {
		hostname = "unknown"
	}
	s := newServer(cfg, buildInfo{Version: version, Commit: commit, Date: date}, stats, hostname)
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second, // no slowloris; no WriteTimeout, /work may take 30s
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	log.Info("hello-svc started", "version", version, "commit", commit, "mode", mode,
		"addr", ln.Addr().String(), "statsd", statsdDesc, "health_fail", cfg.HealthFail)

	select {
	case err := <-serveErr:
		log.Error("hello-svc failed", "err", err)
		return exitFail
	case sig := <-sigs:
		log.Info("hello-svc stopping", "signal", sig.String(), "timeout", cfg.ShutdownTimeout.String())
	}

	// Shutdown closes the listener at once and waits for in-flight
	// requests. A second signal gives up waiting.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
		log.Error("hello-svc stopped, in-flight requests were cut off", "err", err,
			"waited", time.Since(start).Round(time.Millisecond).String())
		return exitFail
	}
	log.Info("hello-svc stopped", "waited", time.Since(start).Round(time.Millisecond).String())
	return exitOK
}

// newLogger logs to stderr (journald under systemd). When journald
// captures the stream it stamps each line itself, so drop our timestamp.
func newLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{}
	if os.Getenv("JOURNAL_STREAM") != "" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
