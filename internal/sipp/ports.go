package sipp

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// freeUDPPort returns a UDP port on ip that nothing was bound to a moment
// ago. Another process may take it before SIPp binds it: the callers retry
// on SIPp's bind failure.
func freeUDPPort(ip string) (int, error) {
	c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("sipp: finding a free UDP port on %s: %w", ip, err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	_ = c.Close()
	return port, nil
}

// freeMediaPort returns a port p such that p and p+2 are free on ip: SIPp
// binds both (audio and video) whatever the scenario.
func freeMediaPort(ip string) (int, error) {
	for range 50 {
		p, err := freeUDPPort(ip)
		if err != nil {
			return 0, err
		}
		if p+2 > 65535 {
			continue
		}
		a, errA := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(p)))
		b, errB := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(p+2)))
		if a != nil {
			_ = a.Close()
		}
		if b != nil {
			_ = b.Close()
		}
		if errA == nil && errB == nil {
			return p, nil
		}
	}
	return 0, fmt.Errorf("sipp: no free pair of UDP ports p, p+2 on %s for SIPp's media sockets", ip)
}

// udpBound reports whether some socket is bound to UDP ip:port. On Linux
// it reads /proc/net/udp{,6}, which disturbs nothing; elsewhere it tries
// to bind the port itself, which could make a SIPp binding at that very
// moment fail (the callers retry on that).
func udpBound(ip string, port int) bool {
	if bound, ok := procUDPBound(ip, port); ok {
		return bound
	}
	c, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return errors.Is(err, syscall.EADDRINUSE)
	}
	_ = c.Close()
	return false
}

// procUDPBound looks for ip:port (or the wildcard address and port) among
// the local addresses of /proc/net/udp and /proc/net/udp6; ok is false
// when neither file can be read.
func procUDPBound(ip string, port int) (bound, ok bool) {
	want := fmt.Sprintf(":%04X", port)
	addr := net.ParseIP(ip)
	for _, name := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		ok = true
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 || !strings.HasSuffix(fields[1], want) {
				continue
			}
			local := procIP(strings.TrimSuffix(fields[1], want))
			if local == nil || local.IsUnspecified() || addr == nil || local.Equal(addr) {
				_ = f.Close()
				return true, true
			}
		}
		_ = f.Close()
	}
	return false, ok
}

// procIP decodes an address of /proc/net/udp{,6}: hex in host byte order,
// 32 bits at a time (little-endian on the machines this runs on).
func procIP(h string) net.IP {
	b := make([]byte, 0, len(h)/2)
	for i := 0; i+8 <= len(h); i += 8 {
		w, err := strconv.ParseUint(h[i:i+8], 16, 32)
		if err != nil {
			return nil
		}
		b = append(b, byte(w), byte(w>>8), byte(w>>16), byte(w>>24))
	}
	switch len(b) {
	case net.IPv4len, net.IPv6len:
		return net.IP(b)
	}
	return nil
}
