package main

import (
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(envMap(nil), "")
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Listen:          ":8080",
		StatsdPrefix:    "hello_svc",
		ShutdownTimeout: 20 * time.Second,
		Greeting:        "hello",
	}
	if cfg != want {
		t.Fatalf("defaults = %+v, want %+v", cfg, want)
	}
}

func TestLoadConfigValues(t *testing.T) {
	cfg, err := loadConfig(envMap(map[string]string{
		"HELLO_LISTEN":           "127.0.0.1:9000",
		"HELLO_STATSD_ADDR":      "127.0.0.1:8125",
		"HELLO_STATSD_PREFIX":    "apps.hello.",
		"HELLO_SHUTDOWN_TIMEOUT": "1m30s",
		"HELLO_GREETING":         "moin",
		"HELLO_HEALTH_FAIL":      "1",
	}), "")
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Listen:          "127.0.0.1:9000",
		StatsdAddr:      "127.0.0.1:8125",
		StatsdPrefix:    "apps.hello",
		ShutdownTimeout: 90 * time.Second,
		Greeting:        "moin",
		HealthFail:      true,
	}
	if cfg != want {
		t.Fatalf("cfg = %+v, want %+v", cfg, want)
	}
}

func TestLoadConfigHealthFail(t *testing.T) {
	cases := []struct {
		env, baked string
		want       bool
	}{
		{"", "", false},
		{"true", "", true},
		{"1", "", true},
		{"false", "", false},
		{"0", "", false},
		{"", "true", true},
		// A binary baked broken cannot be healed from the environment.
		{"false", "true", true},
		{"", "false", false},
	}
	for _, c := range cases {
		cfg, err := loadConfig(envMap(map[string]string{"HELLO_HEALTH_FAIL": c.env}), c.baked)
		if err != nil {
			t.Fatalf("env=%q baked=%q: %v", c.env, c.baked, err)
		}
		if cfg.HealthFail != c.want {
			t.Errorf("env=%q baked=%q: HealthFail=%v, want %v", c.env, c.baked, cfg.HealthFail, c.want)
		}
	}
}

func TestLoadConfigErrors(t *testing.T) {
	cases := []struct {
		name, val string
	}{
		{"HELLO_LISTEN", "8080"},
		{"HELLO_LISTEN", "localhost"},
		{"HELLO_LISTEN", ":99999"},
		{"HELLO_LISTEN", "127.0.0.1:"},
		{"HELLO_STATSD_ADDR", ":8125"},
		{"HELLO_STATSD_ADDR", "statsd"},
		{"HELLO_STATSD_PREFIX", "a:b"},
		{"HELLO_STATSD_PREFIX", "..."},
		{"HELLO_SHUTDOWN_TIMEOUT", "20"},
		{"HELLO_SHUTDOWN_TIMEOUT", "soon"},
		{"HELLO_SHUTDOWN_TIMEOUT", "-5s"},
		{"HELLO_SHUTDOWN_TIMEOUT", "0s"},
		{"HELLO_HEALTH_FAIL", "maybe"},
	}
	for _, c := range cases {
		_, err := loadConfig(envMap(map[string]string{c.name: c.val}), "")
		if err == nil {
			t.Errorf("%s=%q: no error", c.name, c.val)
			continue
		}
		if !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s=%q: error %q does not name the variable", c.name, c.val, err)
		}
	}

	if _, err := loadConfig(envMap(nil), "bogus"); err == nil || !strings.Contains(err.Error(), "healthFail") {
		t.Errorf("baked healthFail=bogus: err = %v", err)
	}

	// Every mistake is reported, not just the first.
	_, err := loadConfig(envMap(map[string]string{
		"HELLO_LISTEN":           "nope",
		"HELLO_SHUTDOWN_TIMEOUT": "nope",
	}), "")
	if err == nil || !strings.Contains(err.Error(), "HELLO_LISTEN") || !strings.Contains(err.Error(), "HELLO_SHUTDOWN_TIMEOUT") {
		t.Errorf("two bad vars: err = %v", err)
	}
}
