package gossip

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfig_Validate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.ID, c.LoadFunc = "node-1", func() Load { return Load{} }
		return c
	}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // "" = valid
	}{
		{"defaults plus ID and LoadFunc", func(*Config) {}, ""},
		{"zero config filled with defaults", func(c *Config) { *c = Config{ID: "x", LoadFunc: c.LoadFunc} }, ""},
		{"port 0", func(c *Config) { c.BindAddr = "127.0.0.1:0" }, ""},
		{"no ID", func(c *Config) { c.ID = "" }, "ID is required"},
		{"no LoadFunc", func(c *Config) { c.LoadFunc = nil }, "LoadFunc is required"},
		{"bind host is a name", func(c *Config) { c.BindAddr = "localhost:7946" }, "must be an IP address"},
		{"bind without port", func(c *Config) { c.BindAddr = "127.0.0.1" }, "not host:port"},
		{"advertise port with random bind port", func(c *Config) {
			c.BindAddr, c.AdvertiseAddr = "127.0.0.1:0", "10.0.0.1:7946"
		}, "fixed port"},
		{"advertise port 0 with random bind port", func(c *Config) {
			c.BindAddr, c.AdvertiseAddr = "127.0.0.1:0", "10.0.0.1:0"
		}, ""},
		{"join entry without port", func(c *Config) { c.Join = []string{"10.0.0.1"} }, "Join address"},
		{"key of 16 bytes", func(c *Config) { c.SecretKey = make([]byte, 16) }, ""},
		{"key of 10 bytes", func(c *Config) { c.SecretKey = make([]byte, 10) }, "16, 24 or 32"},
		{"unknown profile", func(c *Config) { c.Profile = "wan" }, "Profile"},
		{"backoff max below min", func(c *Config) { c.JoinBackoffMin, c.JoinBackoffMax = time.Second, time.Millisecond }, "backoff"},
		{"meta address without port", func(c *Config) { c.Meta.Actor = "127.0.0.1" }, "actor address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			case err != nil && !errors.Is(err, ErrInvalidConfig):
				t.Fatalf("error does not wrap ErrInvalidConfig: %v", err)
			}
		})
	}
}
