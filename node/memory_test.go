package node

import (
	"strings"
	"testing"
)

// --memory-limit takes GOMEMLIMIT's sizes and nothing else.
func TestParseMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "", want: 0},
		{in: "off", want: NoMemoryLimit},
		{in: "1073741824", want: 1 << 30},
		{in: "4096B", want: 4096},
		{in: "64KiB", want: 64 << 10},
		{in: "512MiB", want: 512 << 20},
		{in: " 2GiB ", want: 2 << 30},
		{in: "1TiB", want: 1 << 40},
		{in: "512MB", bad: true},
		{in: "1.5GiB", bad: true},
		{in: "0", bad: true},
		{in: "-1GiB", bad: true},
		{in: "GiB", bad: true},
		{in: "9000000TiB", bad: true},
		{in: "lots", bad: true},
	} {
		got, err := ParseMemoryLimit(tc.in)
		switch {
		case tc.bad && (err == nil || !strings.Contains(err.Error(), "512MiB")):
			t.Errorf("ParseMemoryLimit(%q) = %d, %v; want an error naming the sizes that work", tc.in, got, err)
		case !tc.bad && (err != nil || got != tc.want):
			t.Errorf("ParseMemoryLimit(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	cfg := DefaultConfig()
	cfg.MemoryLimit = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--memory-limit") {
		t.Errorf("Validate with MemoryLimit -1: %v; want an error naming --memory-limit", err)
	}
}
