package integration

import (
	"sort"
	"sync"
)

// hub keeps the recent upstream events and wakes local subscribers. It
// holds no goroutines: each local event stream (an HTTP handler) reads
// from it at its own pace by offset, so a slow app never holds up the
// upstream reader or the other apps.
type hub struct {
	mu sync.Mutex
	// frames[i] has offset base+i. Offsets only grow.
	frames []hubFrame
	base   uint64
	max    int
	// lastSeq is the sequence of the last upstream event added.
	lastSeq uint64
	// lost is the highest sequence trimmed from the buffer. A local
	// resume point below it gets a reset.
	lost uint64
	// wake is closed and replaced whenever a frame is added.
	wake chan struct{}
	subs int
}

// hubFrame is a buffered frame. Frames made by the proxy itself (local,
// e.g. "proxy.write") carry the sequence of the upstream event before
// them and go out without an id, so an app's Last-Event-ID stays a server
// sequence.
type hubFrame struct {
	f     frame
	seq   uint64
	local bool
}

func newHub(max int) *hub { return &hub{max: max, wake: make(chan struct{})} }

// addUpstream adds an event from the server. An event whose sequence
// does not move forward (the server's stream was reset behind us, e.g.
// "event: reset" with reason "ahead") empties the buffer first, so the
// buffer stays ordered by sequence.
func (h *hub) addUpstream(f frame, seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if seq < h.lastSeq {
		h.base += uint64(len(h.frames))
		h.frames = h.frames[:0]
		h.lost = 0
	}
	h.lastSeq = seq
	h.appendLocked(hubFrame{f: f, seq: seq})
}

// addLocal adds a frame made by the proxy.
func (h *hub) addLocal(f frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f.ID = ""
	h.appendLocked(hubFrame{f: f, seq: h.lastSeq, local: true})
}

func (h *hub) appendLocked(hf hubFrame) {
	h.frames = append(h.frames, hf)
	if over := len(h.frames) - h.max; over > 0 {
		for _, d := range h.frames[:over] {
			if !d.local && d.seq > h.lost {
				h.lost = d.seq
			}
		}
		h.frames = append(h.frames[:0], h.frames[over:]...)
		h.base += uint64(over)
	}
	close(h.wake)
	h.wake = make(chan struct{})
}

// startAt returns the offset of the first frame after sequence after
// (after == 0 with fromStart: the oldest frame kept), and whether events
// after it may be missing from the buffer.
func (h *hub) startAt(after uint64, fromStart bool) (off uint64, gap bool, lost uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if fromStart {
		return h.base, false, h.lost
	}
	i := sort.Search(len(h.frames), func(i int) bool {
		f := h.frames[i]
		return f.seq > after || (f.local && f.seq == after)
	})
	return h.base + uint64(i), after < h.lost, h.lost
}

// read returns the frames from offset off on, the next offset, a channel
// closed when more arrive, whether frames between off and the first
// returned were trimmed (the reader was too slow), and the highest
// sequence trimmed.
func (h *hub) read(off uint64) (frames []frame, next uint64, wake <-chan struct{}, trimmed bool, lost uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off < h.base {
		off, trimmed = h.base, true
	}
	for _, hf := range h.frames[off-h.base:] {
		frames = append(frames, hf.f)
	}
	return frames, h.base + uint64(len(h.frames)), h.wake, trimmed, h.lost
}

// status returns the last upstream sequence and the subscriber count.
func (h *hub) status() (lastSeq uint64, subs int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastSeq, h.subs
}

func (h *hub) subscribed(d int) {
	h.mu.Lock()
	h.subs += d
	h.mu.Unlock()
}
