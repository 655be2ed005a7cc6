package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

// listenFdsStart is SD_LISTEN_FDS_START: systemd hands over sockets
// starting at fd 3 (after stdin, stdout, stderr).
const listenFdsStart = 3

// Listener modes, as logged at start.
const (
	modeListen           = "listen"
	modeSocketActivation = "socket-activation"
)

// socketActivated reports whether the environment passes us a socket, in
// the manner of sd_listen_fds(3). LISTEN_PID guards against a variable
// inherited from a parent that was itself activated; when it is absent
// (some launchers and our tests) LISTEN_FDS alone is trusted.
func socketActivated(getenv func(string) string, pid int) (int, error) {
	fds := getenv("LISTEN_FDS")
	if fds == "" {
		return 0, nil
	}
	if p := getenv("LISTEN_PID"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("socket activation: LISTEN_PID=%q is not a number", p)
		}
		if n != pid {
			return 0, nil // meant for another process
		}
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("socket activation: LISTEN_FDS=%q: want a number of sockets", fds)
	}
	return n, nil
}

// openListener returns the systemd-provided socket when there is one,
// otherwise listens on addr itself. The second result is the mode.
func openListener(addr string) (net.Listener, string, error) {
	n, err := socketActivated(os.Getenv, os.Getpid())
	// Like sd_listen_fds(unset_environment=1): anything we might exec must
	// not mistake these variables for its own.
	for _, k := range []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	if err != nil {
		return nil, "", err
	}
	if n > 0 {
		// The service needs one socket; with more, only the first is used.
		f := os.NewFile(listenFdsStart, "systemd-socket")
		ln, err := net.FileListener(f)
		// FileListener works on a dup, so fd 3 itself can go.
		f.Close()
		if err != nil {
			return nil, "", fmt.Errorf("socket activation: fd %d is not a listening socket: %w", listenFdsStart, err)
		}
		return ln, modeSocketActivation, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err // already reads "listen tcp ADDR: ..."
	}
	return ln, modeListen, nil
}
