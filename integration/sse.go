package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// frame is one Server-Sent Events event.
type frame struct {
	// ID is the "id:" line as sent; empty when the event has none.
	ID string
	// Event is the "event:" line; empty means "message".
	Event string
	// Data is the joined "data:" lines.
	Data string
}

// maxFrameBytes bounds one upstream event: a context.changed event carries
// at most a context (64 KiB per app) and some keys.
const maxFrameBytes = 4 << 20

// errFrameTooLarge is returned by sseReader.next for an oversized event.
var errFrameTooLarge = errors.New("integration: upstream event larger than 4 MiB")

// sseReader parses a text/event-stream (WHATWG HTML, "Server-sent events",
// 9.2.5 and 9.2.6). Comments and "retry:" lines are dropped: the proxy
// reconnects on its own schedule.
type sseReader struct {
	r *bufio.Reader
	// pending are lines already read, split at lone CRs.
	pending []string
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{r: bufio.NewReaderSize(r, 16<<10)} }

// readLine returns the next line without its end: CRLF, LF or a lone CR.
func (s *sseReader) readLine() (string, error) {
	if len(s.pending) > 0 {
		l := s.pending[0]
		s.pending = s.pending[1:]
		return l, nil
	}
	line, err := s.r.ReadString('\n')
	if err != nil {
		// A last line without its end, and so the event it is in, is
		// discarded (9.2.6).
		return "", err
	}
	parts := strings.Split(strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), "\r")
	s.pending = parts[1:]
	return parts[0], nil
}

// next returns the next event, or io.EOF at the end of the stream. onLine
// is called for every line read, comments included (liveness).
func (s *sseReader) next(onLine func()) (frame, error) {
	var f frame
	var data strings.Builder
	hasData, size := false, 0
	for {
		line, err := s.readLine()
		if err != nil {
			return frame{}, err
		}
		if onLine != nil {
			onLine()
		}
		if size += len(line) + 1; size > maxFrameBytes {
			return frame{}, errFrameTooLarge
		}
		if line == "" {
			if !hasData && f.Event == "" && f.ID == "" {
				continue
			}
			f.Data = data.String()
			return f, nil
		}
		if line[0] == ':' {
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			if !strings.ContainsRune(value, 0) {
				f.ID = value
			}
		case "event":
			f.Event = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		}
	}
}

// seq returns the frame's id as an event sequence.
func (f frame) seq() (uint64, bool) {
	n, err := strconv.ParseUint(f.ID, 10, 64)
	return n, err == nil
}

// writeFrame writes f in the server's own layout: id, event, data lines.
func writeFrame(w io.Writer, f frame) error {
	var b strings.Builder
	if f.ID != "" {
		fmt.Fprintf(&b, "id: %s\n", f.ID)
	}
	if f.Event != "" {
		fmt.Fprintf(&b, "event: %s\n", f.Event)
	}
	for _, l := range strings.Split(f.Data, "\n") {
		fmt.Fprintf(&b, "data: %s\n", l)
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}
