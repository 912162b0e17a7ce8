package persistence_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard-pbx/switchboard/persistence"
	"github.com/switchboard-pbx/switchboard/persistence/storetest"
)

func openBadger(tb testing.TB, dir string, cfg persistence.BadgerConfig) *persistence.Badger {
	tb.Helper()
	s, err := persistence.OpenBadger(dir, cfg)
	if err != nil {
		tb.Fatalf("OpenBadger: %v", err)
	}
	tb.Cleanup(func() { closeStore(tb, s) })
	return s
}

func TestBadger_Conformance(t *testing.T) {
	var (
		mu   sync.Mutex
		dirs = map[*testing.T]string{}
	)
	storetest.Run(t,
		func(t *testing.T) persistence.Store {
			dir := t.TempDir()
			mu.Lock()
			dirs[t] = dir
			mu.Unlock()
			return openBadger(t, dir, persistence.DefaultBadgerConfig())
		},
		func(t *testing.T) persistence.Store {
			mu.Lock()
			dir := dirs[t]
			mu.Unlock()
			return openBadger(t, dir, persistence.DefaultBadgerConfig())
		})
}

// Badger locks its folder: a second switchboard on the same --data must be
// refused with an error that names the folder, not corrupt it.
func TestBadger_SecondOpenOfFolderIsRefused(t *testing.T) {
	dir := t.TempDir()
	openBadger(t, dir, persistence.DefaultBadgerConfig())
	s, err := persistence.OpenBadger(dir, persistence.DefaultBadgerConfig())
	if err == nil {
		s.Close()
		t.Fatal("second OpenBadger of an open folder succeeded")
	}
	if !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %q does not name the folder %s", err, dir)
	}
}

// With GC on a short timer and stale value-log data to chew on, Close must
// still stop every goroutine the store started.
func TestBadger_CloseStopsValueLogGC(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := persistence.DefaultBadgerConfig()
	cfg.GCInterval = time.Millisecond
	s, err := persistence.OpenBadger(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2<<20) // above badger's value threshold: lives in the value log
	for i := range 5 {
		if _, err := s.Put(t.Context(), "big", big, persistence.AnyVersion); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

const crashDirEnv = "SWITCHBOARD_TEST_BADGER_CRASH_DIR"

// TestBadger_CrashChild is the process that TestBadger_AcknowledgedPutsSurviveSIGKILL
// kills; run alone it skips.
func TestBadger_CrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestBadger_AcknowledgedPutsSurviveSIGKILL")
	}
	s, err := persistence.OpenBadger(dir, persistence.DefaultBadgerConfig())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := range 50 {
		key := fmt.Sprintf("crash/%02d", i)
		v, err := s.Put(context.Background(), key, []byte(key), persistence.MustNotExist)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("acked", key, v) // only after Put returned
	}
	fmt.Println("done")
	os.Stdin.Read(make([]byte, 1)) // wait, never closing the store, for SIGKILL
	os.Exit(1)
}

// An acknowledged Put is durable: a process killed without Close (SIGKILL,
// no chance to flush) loses nothing it acknowledged, and versions issued
// after the restart exceed every acknowledged one.
func TestBadger_AcknowledgedPutsSurviveSIGKILL(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBadger_CrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // held open: the child waits on it
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]uint64{}
	var maxV uint64
	lines := bufio.NewScanner(stdout)
	done := false
	for !done && lines.Scan() {
		f := strings.Fields(lines.Text())
		switch {
		case len(f) == 3 && f[0] == "acked":
			v, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil {
				t.Fatalf("child said %q", lines.Text())
			}
			acked[f[1]] = v
			maxV = max(maxV, v)
		case len(f) > 0 && f[0] == "error":
			t.Fatalf("child: %s", lines.Text())
		case len(f) == 1 && f[0] == "done":
			done = true
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatalf("kill child: %v", err)
	}
	cmd.Wait() // reports the kill; nothing else to learn
	if !done || len(acked) != 50 {
		t.Fatalf("child acknowledged %d puts (done=%v), want 50", len(acked), done)
	}

	s := openBadger(t, dir, persistence.DefaultBadgerConfig())
	for key, v := range acked {
		it, err := s.Get(t.Context(), key)
		if err != nil || it.Version != v || string(it.Value) != key {
			t.Fatalf("after SIGKILL: Get(%q) = (%q, v%d, %v), want (%q, v%d)", key, it.Value, it.Version, err, key, v)
		}
	}
	v, err := s.Put(t.Context(), "after-crash", nil, persistence.MustNotExist)
	if err != nil {
		t.Fatal(err)
	}
	if v <= maxV {
		t.Fatalf("first version after the crash is %d, not above the acknowledged %d", v, maxV)
	}
}

func TestBadgerConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*persistence.BadgerConfig)
		ok     bool
	}{
		{"default", func(*persistence.BadgerConfig) {}, true},
		{"GC off", func(c *persistence.BadgerConfig) { c.GCInterval, c.GCDiscardRatio = 0, 0 }, true},
		{"negative interval", func(c *persistence.BadgerConfig) { c.GCInterval = -time.Second }, false},
		{"ratio 0", func(c *persistence.BadgerConfig) { c.GCDiscardRatio = 0 }, false},
		{"ratio 1", func(c *persistence.BadgerConfig) { c.GCDiscardRatio = 1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := persistence.DefaultBadgerConfig()
			tc.change(&cfg)
			if err := cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				if _, err := persistence.OpenBadger(t.TempDir(), cfg); err == nil {
					t.Fatal("OpenBadger accepted a config that Validate rejects")
				}
			}
		})
	}
}

// Puts queued together share one transaction (group commit), yet each
// keeps its own compare-and-set: of 64 concurrent creates of one key
// exactly one wins, and 64 concurrent puts of distinct keys all succeed
// with distinct versions, each readable after its put returned.
func TestBadger_GroupCommitKeepsEachPutsCheck(t *testing.T) {
	s := openBadger(t, t.TempDir(), persistence.DefaultBadgerConfig())
	ctx := context.Background()
	const n = 64
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	versions := map[uint64]bool{}
	for i := range n {
		wg.Go(func() {
			_, err := s.Put(ctx, "same", []byte{byte(i)}, persistence.MustNotExist)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, persistence.ErrConflict):
				lost++
			default:
				t.Errorf("create %d: %v", i, err)
			}
		})
		wg.Go(func() {
			key := fmt.Sprintf("k/%02d", i)
			v, err := s.Put(ctx, key, []byte(key), persistence.AnyVersion)
			if err != nil {
				t.Errorf("put %s: %v", key, err)
				return
			}
			it, err := s.Get(ctx, key)
			if err != nil || it.Version != v || string(it.Value) != key {
				t.Errorf("get %s after put: %+v %v, want version %d", key, it, err, v)
			}
			mu.Lock()
			defer mu.Unlock()
			if versions[v] {
				t.Errorf("version %d given twice", v)
			}
			versions[v] = true
		})
	}
	wg.Wait()
	if won != 1 || lost != n-1 {
		t.Fatalf("concurrent creates of one key: %d won, %d conflicted; want 1 and %d", won, lost, n-1)
	}
}
