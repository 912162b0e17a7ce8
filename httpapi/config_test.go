package httpapi

import (
	"strings"
	"testing"

	"github.com/switchboard-pbx/switchboard/actors"
)

func TestConfig_DefaultsValidAndBadSettingsNamed(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Actors, c.Zone = (*actors.System)(nil), "sip.test"
		return c
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("DefaultConfig with Actors and Zone: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		edit       func(*Config)
	}{
		{"no actors", "Actors", func(c *Config) { c.Actors = nil }},
		{"no zone", "Zone", func(c *Config) { c.Zone = "" }},
		{"negative request timeout", "RequestTimeout", func(c *Config) { c.RequestTimeout = -1 }},
		{"negative body limit", "MaxBodyBytes", func(c *Config) { c.MaxBodyBytes = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.want)
			}
			if _, err := New(c); err == nil {
				t.Fatal("New accepted what Validate refuses")
			}
		})
	}
}
