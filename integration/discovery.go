package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Discovery is the content of the discovery file: how a local app finds
// the proxy and the token it must present. The file is written with mode
// 0600 (only the user who started the proxy can read it) when the proxy
// starts, and removed when it stops.
type Discovery struct {
	// Version is the layout's version: 1.
	Version int `json:"version"`
	// URL is the proxy's base URL, e.g. "http://127.0.0.1:49731".
	URL string `json:"url"`
	// Port is the proxy's port on 127.0.0.1.
	Port int `json:"port"`
	// Token is this launch's local token: send "Authorization: Bearer
	// <token>" on every request.
	Token string `json:"token"`
	// PID is the proxy's process id.
	PID int `json:"pid"`
	// Server is the Switchboard server the proxy forwards to.
	Server string `json:"server"`
	// Started is when the proxy started.
	Started time.Time `json:"started"`
}

// DefaultDiscoveryPath is <user config dir>/switchboard/proxy.json, e.g.
// ~/.config/switchboard/proxy.json on Linux.
func DefaultDiscoveryPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("integration: no user config directory (set --discovery): %w", err)
	}
	return filepath.Join(dir, "switchboard", "proxy.json"), nil
}

// ReadDiscovery reads a discovery file. It refuses a file that others can
// read or write: its token would not be a secret.
func ReadDiscovery(path string) (Discovery, error) {
	var d Discovery
	st, err := os.Stat(path)
	if err != nil {
		return d, fmt.Errorf("integration: no proxy discovery file (is switchboard proxy running?): %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return d, fmt.Errorf("integration: discovery file %s has mode %v: others can read it; restart the proxy", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("integration: discovery file %s: %w", path, err)
	}
	return d, nil
}

// writeDiscovery writes d to path atomically with mode 0600, creating its
// folder with mode 0700.
func writeDiscovery(path string, d Discovery) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// writeFileAtomic writes b to a temporary file (mode 0600) beside path,
// syncs it and renames it over path: a reader sees the old file or the
// new one, never a part, and never a moment with wider permissions.
func writeFileAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// removeDiscovery removes path if it still holds token (a newer proxy may
// have replaced it).
func removeDiscovery(path, token string) error {
	d, err := ReadDiscovery(path)
	if err != nil || d.Token != token {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
