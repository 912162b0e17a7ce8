package main

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/credential"
)

// TestRowNamed_AliasesKeepOldCommandLines: --methods INVITE and MESSAGE
// still name the trunk rows, names match in any case, and an unknown row
// is refused naming the rows there are.
func TestRowNamed_AliasesKeepOldCommandLines(t *testing.T) {
	for name, want := range map[string]string{
		"INVITE": "INVITE-trunk", "message": "MESSAGE-trunk", "invite-auth": "INVITE-auth",
		"REGISTER": "REGISTER", "MESSAGE-AUTH": "MESSAGE-auth",
	} {
		r, ok := rowNamed(name)
		if !ok || r.name != want {
			t.Errorf("rowNamed(%q) = %q, %v; want %q", name, r.name, ok, want)
		}
	}
	cfg := DefaultConfig()
	cfg.Methods = []string{"INVITE", "OPTIONS"}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), `"OPTIONS"`) || !strings.Contains(err.Error(), "INVITE-auth") {
		t.Errorf("Validate with --methods OPTIONS: %v; want an error naming OPTIONS and the rows", err)
	}
}

func TestDefaultConfig_LadderGoesPastBothKnees(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if top := cfg.Rates[len(cfg.Rates)-1]; top < 12800 {
		t.Errorf("the default ladder tops at %d/s, want at least 12,800", top)
	}
	for i := 1; i < len(cfg.Rates); i++ {
		if cfg.Rates[i] > 4000 && cfg.Rates[i]-cfg.Rates[i-1] > 1600 {
			t.Errorf("step %d -> %d above 4,000/s: want finer steps", cfg.Rates[i-1], cfg.Rates[i])
		}
	}
	if len(cfg.Methods) != len(rows) {
		t.Errorf("default rows %v, want all %d", cfg.Methods, len(rows))
	}
}

func TestPercentile_NearestRank(t *testing.T) {
	var times []time.Duration
	for i := 1; i <= 200; i++ {
		times = append(times, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.50, 100 * time.Millisecond}, {0.99, 198 * time.Millisecond}, {1, 200 * time.Millisecond}, {0.001, time.Millisecond}} {
		if got := percentile(times, tc.q); got != tc.want {
			t.Errorf("percentile(1..200 ms, %v) = %s, want %s", tc.q, got, tc.want)
		}
	}
	// p99 of ten values is the tenth: nine of them are only 90%.
	if got := percentile(times[:10], 0.99); got != 10*time.Millisecond {
		t.Errorf("percentile(1..10 ms, 0.99) = %s, want 10ms", got)
	}
	if got := percentile([]time.Duration{7}, 0.99); got != 7 {
		t.Errorf("percentile of one value = %s, want it", got)
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of none = %s, want 0", got)
	}
}

// TestLatencyRates_HalfTheKnee: "own" puts each proxy at half its own
// highest passing rate, "common" both at half the lower one; a proxy that
// passed nothing is not measured.
func TestLatencyRates_HalfTheKnee(t *testing.T) {
	proxies := []*proxy{{name: proxyKamailio}, {name: proxySwitchboard}}
	best := map[string]int{proxyKamailio: 4000, proxySwitchboard: 2400}
	cfg := DefaultConfig()
	got := latencyRates(cfg, proxies, best)
	if got[proxyKamailio] != 2000 || got[proxySwitchboard] != 1200 {
		t.Errorf("own: %v, want kamailio 2000, switchboard 1200", got)
	}
	cfg.LatencyAt = "common"
	got = latencyRates(cfg, proxies, best)
	if got[proxyKamailio] != 1200 || got[proxySwitchboard] != 1200 {
		t.Errorf("common: %v, want both 1200", got)
	}
	got = latencyRates(cfg, proxies, map[string]int{proxyKamailio: 4000})
	if got[proxySwitchboard] != 0 || got[proxyKamailio] != 0 {
		t.Errorf("common with a proxy that passed nothing: %v, want 0 for both", got)
	}
}

func TestMakeDevices_GroupsOfGroupSize(t *testing.T) {
	devices := makeDevices(12, 5)
	groups := map[string]int{}
	names := map[string]bool{}
	for _, d := range devices {
		groups[d.group]++
		names[d.name] = true
		if !strings.Contains(d.password, d.name) {
			t.Errorf("device %s has password %q, not its own", d.name, d.password)
		}
	}
	if len(names) != 12 || len(groups) != 3 || groups["g00000"] != 5 || groups["g00002"] != 2 {
		t.Errorf("12 devices in groups of 5: %d names, groups %v; want 12 names in 5, 5 and 2", len(names), groups)
	}
}

// TestWriteHA1Table_KamailioLoadsWhatSwitchboardStores: the db_text row
// of a device carries the MD5 HA1 that credential.Derive gives for the
// account's realm, the one Switchboard checks digests against.
func TestWriteHA1Table_KamailioLoadsWhatSwitchboardStores(t *testing.T) {
	dir := t.TempDir()
	d := device{name: "d00001", group: "g00000", password: "bench-d00001-secret"}
	if err := writeHA1Table(dir, "acme.sip.switchboard.test", []device{d}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "ha1"))
	if err != nil {
		t.Fatal(err)
	}
	ha1 := hex.EncodeToString(credential.Derive(d.name, "acme.sip.switchboard.test", d.password).MD5)
	want := "key_name(str) key_type(int) value_type(int) key_value(str) expires(int)\nd00001:0:0:" + ha1 + ":0\n"
	if string(b) != want {
		t.Errorf("ha1 table:\n%s\nwant:\n%s", b, want)
	}
}

// TestProcFigures_OfThisProcess reads this test's own resident set and
// CPU time, which are there and grow when it allocates and spins.
func TestProcFigures_OfThisProcess(t *testing.T) {
	pid := os.Getpid()
	rss0, err := rssBytes(pid)
	if err != nil {
		t.Skip(err) // not Linux
	}
	cpu0, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 64<<20)
	for i := range block {
		block[i] = byte(i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		cpu1, err := cpuTime(pid)
		if err != nil {
			t.Fatal(err)
		}
		if cpu1-cpu0 >= 50*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time %s -> %s after 5 s of spinning", cpu0, cpu1)
		}
		for i := range block[:1<<20] {
			block[i]++
		}
	}
	rss1, err := rssBytes(pid)
	if err != nil {
		t.Fatal(err)
	}
	if rss1-rss0 < 32<<20 {
		t.Errorf("resident set %d -> %d after touching 64 MiB, want it to grow by most of that", rss0, rss1)
	}
	_ = block[len(block)-1]
}
