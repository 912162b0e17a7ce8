//go:build unix

// Durability: what a node acknowledged survives a SIGTERM and a SIGKILL,
// on either store.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// Sizes of the durability tests.
const (
	deviceCount = 500 // devices provisioned per durability test
	putWorkers  = 8   // concurrent HTTP clients provisioning them
	killAfter   = 250 // acknowledged PUTs before the SIGKILL
)

// ---- provisioning ----

func devID(i int) string { return fmt.Sprintf("dev-%03d", i) }

func provisionAccountAndGroup(t *testing.T, n *proc, account, group string) {
	t.Helper()
	want(t, n.call(t, http.MethodPut, "/v1/accounts/"+account, map[string]string{"display_name": "Process test"}), http.StatusCreated, "PUT account")
	want(t, n.call(t, http.MethodPut, "/v1/accounts/"+account+"/groups/"+group, map[string]any{"display_name": "Desk phones", "pool": "pool-1", "labels": map[string]string{"site": "test"}}), http.StatusCreated, "PUT group")
}

// putResult is the outcome of one device PUT. status 0: no response.
type putResult struct {
	Status  int
	version uint64
	err     error
}

func (r putResult) acked() bool { return r.Status == http.StatusCreated || r.Status == http.StatusOK }

// putDevices PUTs devices 0..count-1 into group from putWorkers goroutines
// and returns each one's outcome, by index. It stops handing out devices
// once stop is closed (nil: never). onAck, if set, is called after each
// acknowledged PUT.
func putDevices(n *proc, account, group string, count int, stop <-chan struct{}, onAck func()) []putResult {
	results := make([]putResult, count)
	eachUntil(count, stop, func(i int) {
		body := map[string]string{"group": group, "password": "pw-" + devID(i) + "-durable"}
		r, err := n.Do(context.Background(), http.MethodPut, "/v1/accounts/"+account+"/devices/"+devID(i), body, nil)
		res := putResult{Status: r.Status, err: err}
		if res.acked() {
			// The status line is the acknowledgement, even if the
			// body broke off: the node writes it after the store.
			var d deviceJSON
			if json.Unmarshal(r.Body, &d) == nil {
				res.version = d.Version
			}
			if onAck != nil {
				onAck()
			}
		}
		results[i] = res
	})
	return results
}

// eachUntil calls do for 0..count-1 from putWorkers goroutines, and hands
// out no more indexes once stop is closed (nil: never). It returns when
// every call handed out has returned.
func eachUntil(count int, stop <-chan struct{}, do func(i int)) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(jobs)
		for i := range count {
			select {
			case jobs <- i:
			case <-stop:
				return
			}
		}
	})
	for range putWorkers {
		wg.Go(func() {
			for i := range jobs {
				do(i)
			}
		})
	}
	wg.Wait()
}

// readDevices GETs each id from putWorkers goroutines and returns the
// devices found. Any answer but 200 and 404 fails the test.
func readDevices(t *testing.T, n *proc, account string, ids []string) map[string]deviceJSON {
	t.Helper()
	replies := make([]reply, len(ids))
	errs := make([]error, len(ids))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range putWorkers {
		wg.Go(func() {
			for i := range jobs {
				replies[i], errs[i] = n.Do(context.Background(), http.MethodGet, "/v1/accounts/"+account+"/devices/"+ids[i], nil, nil)
			}
		})
	}
	for i := range ids {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	found := map[string]deviceJSON{}
	for i, r := range replies {
		switch {
		case errs[i] != nil:
			t.Fatalf("GET device %s: %v", ids[i], errs[i])
		case r.Status == http.StatusNotFound:
		case r.Status != http.StatusOK:
			t.Fatalf("GET device %s: %s", ids[i], r)
		default:
			noSecretFields(t, r)
			found[ids[i]] = decode[deviceJSON](t, r)
		}
	}
	return found
}

// listDevices reads the account's whole device list, 100 a page, and
// checks the paging: full pages until the last, ids rising across pages.
func listDevices(t *testing.T, n *proc, account string) []deviceJSON {
	t.Helper()
	const limit = 100
	var all []deviceJSON
	after := ""
	for page := 1; ; page++ {
		r := n.call(t, http.MethodGet, "/v1/accounts/"+account+"/devices?limit="+strconv.Itoa(limit)+"&after="+url.QueryEscape(after), nil)
		want(t, r, http.StatusOK, "list devices")
		noSecretFields(t, r)
		l := decode[deviceListJSON](t, r)
		for _, d := range l.Devices {
			if len(all) > 0 && d.ID <= all[len(all)-1].ID {
				t.Fatalf("page %d: device %s listed after %s: ids must rise across pages", page, d.ID, all[len(all)-1].ID)
			}
			all = append(all, d)
		}
		if l.NextAfter == "" {
			return all
		}
		if len(l.Devices) != limit || l.NextAfter != l.Devices[len(l.Devices)-1].ID {
			t.Fatalf("page %d: %d devices and next_after %q; a page with a cursor must be full and end at the cursor", page, len(l.Devices), l.NextAfter)
		}
		after = l.NextAfter
	}
}

// noSecretFields fails the test if a device reply names a password or HA1.
func noSecretFields(t *testing.T, r reply) {
	t.Helper()
	lower := bytes.ToLower(r.Body)
	for _, w := range []string{"password", "ha1"} {
		if bytes.Contains(lower, []byte(w)) {
			t.Fatalf("reply mentions %q; a device reply never carries credentials: %s", w, r)
		}
	}
}

// checkReadBack compares what a restarted node serves with what was
// acknowledged before it stopped: every acknowledged device is there, at
// its acknowledged version; GET, the paged list, the group's members and
// the account's count agree; and a new write gets a version above every
// earlier one (versions never repeat, even after a crash). It returns the
// ids present.
func checkReadBack(t *testing.T, n *proc, account, group string, attempted []putResult) []string {
	t.Helper()
	ids := make([]string, len(attempted))
	for i := range attempted {
		ids[i] = devID(i)
	}
	got := readDevices(t, n, account, ids)
	var maxVersion uint64
	for i, res := range attempted {
		d, ok := got[ids[i]]
		switch {
		case res.acked() && !ok:
			t.Errorf("device %s was acknowledged (%d, version %d) but is gone after the restart", ids[i], res.Status, res.version)
		case res.acked() && res.version != 0 && d.Version != res.version:
			t.Errorf("device %s: version %d after the restart, %d when acknowledged", ids[i], d.Version, res.version)
		}
		if ok && (d.Group != group || d.Account != account || d.Username != ids[i] || d.Realm != account+"."+zone) {
			t.Errorf("device %s after the restart: %+v", ids[i], d)
		}
		maxVersion = max(maxVersion, d.Version, res.version)
	}
	present := make([]string, 0, len(got))
	for id := range got {
		present = append(present, id)
	}
	slices.Sort(present)

	var listed []string
	for _, d := range listDevices(t, n, account) {
		listed = append(listed, d.ID)
	}
	if !slices.Equal(listed, present) {
		t.Errorf("the paged list holds %d devices, GET finds %d: they must agree", len(listed), len(present))
	}
	g := decode[groupJSON](t, n.call(t, http.MethodGet, "/v1/accounts/"+account+"/groups/"+group, nil))
	if !slices.Equal(g.Members, present) {
		t.Errorf("group %s has %d members, the account %d devices: they must agree", group, len(g.Members), len(present))
	}
	a := decode[accountJSON](t, n.call(t, http.MethodGet, "/v1/accounts/"+account, nil))
	if a.Devices != len(present) || a.Groups != 1 {
		t.Errorf("account counts %d devices in %d groups, want %d in 1", a.Devices, a.Groups, len(present))
	}
	maxVersion = max(maxVersion, a.Version, g.Version)

	r := n.call(t, http.MethodPut, "/v1/accounts/"+account+"/devices/after-restart", map[string]string{"group": group, "password": "after-restart-pw"})
	want(t, r, http.StatusCreated, "PUT a device after the restart")
	if v := decode[deviceJSON](t, r).Version; v <= maxVersion {
		t.Errorf("a write after the restart got version %d, not above the %d already used: versions must never repeat", v, maxVersion)
	}
	return present
}

// ---- durability ----

// TestProcess_RestartKeepsEveryDevice provisions 500 devices concurrently,
// stops the node with SIGTERM, and proves a new process on the same store
// serves every one of them, by GET, by the paged list and as group members.
func TestProcess_RestartKeepsEveryDevice(t *testing.T) {
	t.Parallel()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t, "restart")
			n := startNode(t, nodeOptions{args: st.flags})
			provisionAccountAndGroup(t, n, st.account, "hq")
			results := putDevices(n, st.account, "hq", deviceCount, nil, nil)
			for i, res := range results {
				if res.Status != http.StatusCreated {
					t.Fatalf("PUT device %s: status %d, err %v; want 201", devID(i), res.Status, res.err)
				}
			}
			n.stop(t)

			n = startNode(t, nodeOptions{args: st.flags})
			present := checkReadBack(t, n, st.account, "hq", results)
			if len(present) != deviceCount {
				t.Errorf("%d devices after the restart, want %d", len(present), deviceCount)
			}
			n.stop(t)
		})
	}
}

// TestProcess_SIGKILLLosesNoAcknowledgedWrite kills the node with SIGKILL
// while eight clients are provisioning devices, and proves every device
// whose PUT was acknowledged (201) is served by the next process: an
// acknowledgement means the write is durable. Writes in flight at the kill
// may or may not have landed, but GET, list and membership must agree on
// which did.
func TestProcess_SIGKILLLosesNoAcknowledgedWrite(t *testing.T) {
	t.Parallel()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t, "sigkill")
			n := startNode(t, nodeOptions{args: st.flags})
			provisionAccountAndGroup(t, n, st.account, "hq")

			var acked atomic.Int64
			var once sync.Once
			killNow, stopFeeding, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
			var results []putResult
			go func() {
				defer close(done)
				results = putDevices(n, st.account, "hq", deviceCount, stopFeeding, func() {
					if acked.Add(1) == killAfter {
						once.Do(func() { close(killNow) })
					}
				})
			}()
			select {
			case <-killNow:
				n.Kill()
				close(stopFeeding)
				<-done
			case <-done:
				close(stopFeeding)
				t.Fatalf("all PUTs finished with only %d acknowledged; the kill was due after %d", acked.Load(), killAfter)
			}
			if ws, ok := n.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the node ended with %v, not by SIGKILL", n.Cmd.ProcessState)
			}
			var nAcked, nFailed int
			for _, res := range results {
				switch {
				case res.acked():
					nAcked++
				case res.Status != 0:
					t.Errorf("a PUT got %d before the kill; only 201 or no answer is expected", res.Status)
				case res.err != nil:
					nFailed++
				}
			}
			if nAcked == deviceCount {
				t.Fatal("every PUT was acknowledged: the kill came too late to test anything")
			}
			t.Logf("killed after %d acknowledged PUTs; %d got no answer", nAcked, nFailed)

			n = startNode(t, nodeOptions{args: st.flags})
			present := checkReadBack(t, n, st.account, "hq", results)
			if len(present) < nAcked {
				t.Errorf("%d devices after the restart, fewer than the %d acknowledged", len(present), nAcked)
			}
			n.stop(t)
		})
	}
}
