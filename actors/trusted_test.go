package actors

import (
	"slices"
	"strings"
	"testing"
)

func TestParseTrustedSources(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string // nil: an error naming wantErr
		err  string
	}{
		{"none", nil, []string{}, ""},
		{"canonical", []string{"203.0.113.77/24", "2001:db8::9", "198.51.100.7", "203.0.113.0/24"},
			[]string{"198.51.100.7/32", "203.0.113.0/24", "2001:db8::9/128"}, ""},
		{"IPv4-mapped unmapped", []string{"::ffff:192.0.2.0/120"}, []string{"192.0.2.0/24"}, ""},
		{"not a prefix", []string{"203.0.113.0/33"}, nil, "not a CIDR prefix"},
		{"a name", []string{"sbc.example.com"}, nil, "not a CIDR prefix"},
		{"too wide IPv4", []string{"10.0.0.0/8"}, nil, "wider than an account may declare"},
		{"too wide IPv6", []string{"2001:db8::/32"}, nil, "wider than an account may declare"},
		{"too wide mapped", []string{"::ffff:0.0.0.0/96"}, nil, "wider than an account may declare"},
		{"zone", []string{"fe80::1%eth0"}, nil, "no zone"},
		{"too many", slices.Repeat([]string{"192.0.2.1"}, MaxTrustedSources+1), nil, "at most 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTrustedSources(tc.in)
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseTrustedSources(%q) = %v, %v; want an error saying %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(PrefixStrings(got), tc.want) {
				t.Fatalf("ParseTrustedSources(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}
