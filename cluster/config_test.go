package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestConfig_DefaultsValidAndBadSettingsNamed(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		edit       func(*Config)
	}{
		{"actor address without port", "--actor", func(c *Config) { c.ActorAddr = "127.0.0.1" }},
		{"actor port not a number", "--actor", func(c *Config) { c.ActorAddr = "127.0.0.1:http" }},
		{"negative load interval", "LoadInterval", func(c *Config) { c.LoadInterval = -time.Second }},
		{"negative handover timeout", "LookupConfig", func(c *Config) { c.Lookup.HandoverTimeout = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.want)
			}
			if m, err := New(c); err == nil {
				_ = m.Close()
				t.Fatal("New accepted what Validate refuses")
			}
		})
	}
}
