// Command quoted serves a quote of the day. It is goship.deploy's second example, deliberately
// unlike hello-svc: the package is quote-api but the program is quoted, it binds the port named
// by $PORT itself (no socket activation), answers its health check at /-/ready and reports its
// version as a plain-text body at /version, and has no database.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// Stamped at build time: -ldflags "-X main.version=1.214 -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

var quotes = []string{
	"Make it work, make it right, make it fast.",
	"Simplicity is prerequisite for reliability.",
	"Deploy small, deploy often.",
}

func main() {
	os.Exit(run(os.Getenv, os.Stdout, os.Stderr, nil))
}

// run serves until SIGTERM/SIGINT (or until stop is closed, in tests) and returns the exit code.
func run(getenv func(string) string, stdout, stderr io.Writer, stop <-chan struct{}) int {
	addr, err := listenAddr(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "quoted: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		// One line: journald shows the cause (say, "address already in use") in one entry.
		fmt.Fprintf(stderr, "quoted: cannot listen on %s: %v\n", addr, err)
		return 1
	}
	srv := &http.Server{Handler: handler(time.Now), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "quoted %s (commit %s, built %s) listening on %s\n", version, commit, date, ln.Addr())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		fmt.Fprintf(stderr, "quoted: %v\n", err)
		return 1
	case <-sigs:
	case <-stop:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "quoted: shutdown: %v\n", err)
		return 1
	}
	return 0
}

// listenAddr is ":$PORT" (8080 when PORT is unset), or $QUOTE_LISTEN when that is set.
func listenAddr(getenv func(string) string) (string, error) {
	if listen := getenv("QUOTE_LISTEN"); listen != "" {
		return listen, nil
	}
	port := getenv("PORT")
	if port == "" {
		return ":8080", nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("PORT=%q is not a port number (1-65535)", port)
	}
	return ":" + port, nil
}

func handler(now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, version+"\n")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, quotes[now().YearDay()%len(quotes)]+"\n")
	})
	return mux
}
