package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-pbx/switchboard/credential"
	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

// kamailioOptions choose what bench/sip/kamailio.cfg turns on beyond the
// trunk proxy.
type kamailioOptions struct {
	devices []device // digest for these devices (SB_HA1_DB); none: trunk only
	dialog  bool     // track INVITE dialogs (SB_DIALOG), for the memory row
}

// startKamailio starts the SIPp feature servers and Kamailio in front of
// them, and returns once Kamailio answers OPTIONS. Kamailio always serves
// kamcmd on a socket in dir (SB_CTL), for its shared memory figures.
func startKamailio(ctx context.Context, cfg Config, dir string, opts kamailioOptions) (*proxy, error) {
	bin, err := exec.LookPath(cfg.Kamailio)
	if err != nil {
		return nil, fmt.Errorf("no %s binary: apt-get install kamailio", cfg.Kamailio)
	}
	if _, err := os.Stat(cfg.KamailioCfg); err != nil {
		return nil, fmt.Errorf("kamailio configuration: %w (run from the repository root)", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	servers, procs, stopServers, err := startFeatureServers(ctx)
	if err != nil {
		return nil, err
	}
	port, err := nodeproc.FreePort()
	if err != nil {
		stopServers()
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", port)
	ctl := "unix:" + filepath.Join(dir, "kamailio.ctl")
	args := []string{
		"-f", cfg.KamailioCfg,
		"-DD", "-E", // foreground, logs on standard error
		"-m", "1024", "-M", "16", "-x", "tlsf",
		"-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir,
		"-A", "SB_LISTEN=udp:" + addr,
		"-A", `SB_UAS="sip:` + servers["INVITE"] + `"`,
		"-A", `SB_UAS_MESSAGE="sip:` + servers["MESSAGE"] + `"`,
		"-A", `SB_CTL="` + ctl + `"`,
	}
	if len(opts.devices) > 0 {
		db := filepath.Join(dir, "ha1db")
		if err := writeHA1Table(db, cfg.Domain, opts.devices); err != nil {
			stopServers()
			return nil, err
		}
		args = append(args, "-A", `SB_HA1_DB="text://`+db+`"`)
	}
	if opts.dialog {
		args = append(args, "-A", "SB_DIALOG")
	}
	d, err := startDaemon(ctx, bin, args, filepath.Join(dir, "kamailio.log"))
	if err != nil {
		stopServers()
		return nil, err
	}
	p := &proxy{name: proxyKamailio, addr: addr, ctl: ctl, pid: d.cmd.Process.Pid, servers: procs, stop: func() { d.stop(); stopServers() }}
	// Kamailio answers OPTIONS for itself (route REQINIT): ready when it does.
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := sipp.RunUAC(ctx, sipp.OptionsProbe, addr, sipp.UACOptions{Domain: addr, RecvTimeout: 500 * time.Millisecond, Timeout: 10 * time.Second})
		if err == nil && res.Successful == 1 {
			break
		}
		if d.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("kamailio did not answer OPTIONS on %s: %v %s\n%s", addr, err, res, logTail(d.log))
		}
		<-tick.C
	}
	if len(opts.devices) > 0 {
		// htable loads the table before the workers start: check it did.
		out, err := kamcmd(ctx, p, "htable.stats")
		if err != nil || !strings.Contains(out, "all: "+strconv.Itoa(len(opts.devices))) {
			p.stop()
			return nil, fmt.Errorf("kamailio did not load %d HA1s (htable.stats: %v)\n%s\n%s", len(opts.devices), err, out, logTail(d.log))
		}
	}
	return p, nil
}

// writeHA1Table writes the db_text table "ha1" in folder db that
// kamailio.cfg's htable loads: one row per device, its MD5 HA1 for realm
// (the account's domain, the realm both proxies challenge with).
func writeHA1Table(db, realm string, devices []device) error {
	if err := os.MkdirAll(db, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(db, "ha1"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	_, _ = w.WriteString("key_name(str) key_type(int) value_type(int) key_value(str) expires(int)\n")
	for _, d := range devices {
		ha1 := hex.EncodeToString(credential.Derive(d.name, realm, d.password).MD5)
		_, _ = fmt.Fprintf(w, "%s:0:0:%s:0\n", d.name, ha1)
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// kamcmd runs one RPC command against Kamailio's ctl socket.
func kamcmd(ctx context.Context, p *proxy, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kamcmd", append([]string{"-s", p.ctl}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kamcmd %s: %w (apt-get install kamailio has it)", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// shmUsed is Kamailio's shared memory in use (core.shmmem real_used): what
// its transactions, dialogs and registrations hold, shared by its workers.
func shmUsed(ctx context.Context, p *proxy) (int64, error) {
	out, err := kamcmd(ctx, p, "core.shmmem")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "real_used:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("kamcmd core.shmmem: no real_used in %q", out)
}
