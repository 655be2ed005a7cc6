package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// config holds everything read from the environment. Configuration is
// env-only on purpose: under systemd, Environment=/EnvironmentFile= in the
// unit is the single place an operator changes settings.
type config struct {
	Listen          string        // HELLO_LISTEN
	StatsdAddr      string        // HELLO_STATSD_ADDR; empty disables statsd
	StatsdPrefix    string        // HELLO_STATSD_PREFIX
	ShutdownTimeout time.Duration // HELLO_SHUTDOWN_TIMEOUT
	Greeting        string        // HELLO_GREETING
	HealthFail      bool          // HELLO_HEALTH_FAIL or -X main.healthFail=true
}

const (
	defaultListen          = ":8080"
	defaultStatsdPrefix    = "hello_svc"
	defaultShutdownTimeout = 20 * time.Second
	defaultGreeting        = "hello"
)

// loadConfig parses the HELLO_* variables via getenv (os.Getenv in
// production, a map in tests). bakedHealthFail is the ldflags-settable
// healthFail var. All problems are reported at once so an operator fixes
// the unit file in one go rather than one restart per mistake.
func loadConfig(getenv func(string) string, bakedHealthFail string) (config, error) {
	cfg := config{
		Listen:          defaultListen,
		StatsdPrefix:    defaultStatsdPrefix,
		ShutdownTimeout: defaultShutdownTimeout,
		Greeting:        defaultGreeting,
	}
	var errs []error
	bad := func(name, val string, err error) {
		errs = append(errs, fmt.Errorf("%s=%q: %w", name, val, err))
	}
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }

	if v := get("HELLO_LISTEN"); v != "" {
		if err := checkHostPort(v, false); err != nil {
			bad("HELLO_LISTEN", v, err)
		} else {
			cfg.Listen = v
		}
	}

	if v := get("HELLO_STATSD_ADDR"); v != "" {
		// A listen address may omit the host; a destination may not.
		if err := checkHostPort(v, true); err != nil {
			bad("HELLO_STATSD_ADDR", v, err)
		} else {
			cfg.StatsdAddr = v
		}
	}

	if v := get("HELLO_STATSD_PREFIX"); v != "" {
		// ':', '|' and whitespace would corrupt the statsd line protocol.
		if strings.ContainsAny(v, ":|@ \t\r\n") {
			bad("HELLO_STATSD_PREFIX", v, errors.New("must not contain ':', '|', '@' or whitespace"))
		} else if p := strings.Trim(v, "."); p == "" {
			bad("HELLO_STATSD_PREFIX", v, errors.New("must contain more than dots"))
		} else {
			cfg.StatsdPrefix = p
		}
	}

	if v := get("HELLO_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad("HELLO_SHUTDOWN_TIMEOUT", v, errors.New("not a Go duration (examples: 20s, 1m30s, 500ms)"))
		case d <= 0:
			bad("HELLO_SHUTDOWN_TIMEOUT", v, errors.New("must be greater than zero"))
		default:
			cfg.ShutdownTimeout = d
		}
	}

	if v := getenv("HELLO_GREETING"); strings.TrimSpace(v) != "" {
		cfg.Greeting = v
	}

	if v := get("HELLO_HEALTH_FAIL"); v != "" {
		b, err := parseBool(v)
		if err != nil {
			bad("HELLO_HEALTH_FAIL", v, err)
		}
		cfg.HealthFail = b
	}
	if bakedHealthFail != "" {
		b, err := parseBool(bakedHealthFail)
		if err != nil {
			bad("main.healthFail (ldflags)", bakedHealthFail, err)
		}
		// A binary built broken stays broken: the environment cannot heal it.
		cfg.HealthFail = cfg.HealthFail || b
	}

	return cfg, errors.Join(errs...)
}

// checkHostPort validates host:port up front so a typo fails at start with
// the variable's name rather than later with a bare net error.
func checkHostPort(addr string, needHost bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port or :port (examples: :8080, 127.0.0.1:8080, [::1]:8080)")
	}
	if needHost && host == "" {
		return errors.New("want host:port with a host (example: 127.0.0.1:8125)")
	}
	if port == "" {
		return errors.New("missing port")
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, errors.New("want true/1 or false/0")
}
