package fraud

// buckets is how many buckets a sliding window has: it counts the events
// of the last window to within 1/buckets of its length.
const buckets = 16

// window is a sliding-window counter in fixed memory: buckets buckets of
// width w, the newest at index head. It covers [head-buckets+1, head], so
// an event is counted from when it happens until between 15/16 and 16/16
// of the window later.
type window struct {
	counts [buckets]float32
	head   int64 // the newest bucket's index, time/width
	width  int64 // nanoseconds; 0 until first used
}

// advance moves the window to time t (nanoseconds) with bucket width
// width, emptying the buckets it leaves behind. A new width (the policy
// changed) starts the window afresh.
func (w *window) advance(t, width int64) {
	idx := t / width
	if w.width != width {
		*w = window{head: idx, width: width}
		return
	}
	if idx <= w.head {
		return
	}
	if idx-w.head >= buckets {
		w.counts = [buckets]float32{}
	} else {
		for i := w.head + 1; i <= idx; i++ {
			w.counts[i%buckets] = 0
		}
	}
	w.head = idx
}

// add counts x at time t and returns the count in the window then. An
// event older than the window is dropped; one within it but out of order
// lands in its own bucket.
func (w *window) add(t, width int64, x float64) float64 {
	w.advance(t, width)
	if idx := t / width; idx > w.head-buckets {
		w.counts[idx%buckets] += float32(x)
	}
	return w.sum(t, width)
}

func (w *window) sum(t, width int64) float64 {
	w.advance(t, width)
	var s float32
	for _, c := range w.counts {
		s += c
	}
	return float64(s)
}

func widthOf(seconds float64) int64 {
	return max(int64(seconds*1e9/buckets), 1)
}
