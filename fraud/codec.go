package fraud

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// The binary form of a History (version 1), little-endian varints:
//
//	"SBH1" retention_days
//	first last_hour last_day bloom_epoch       (zig-zag varints)
//	n_hours  { hour_index_delta float32 }*     (non-zero hours, ascending ring index)
//	n_days   { day_index_delta 5*float32 }*    (non-zero days)
//	n_sources { network agent hour }*
//	n_words  { word_index_delta uint64 }*      (non-zero Bloom words, both generations)
//
// A device that sends little encodes in a few dozen bytes.
const historyMagic = "SBH1"

// ErrBadHistory is wrapped by UnmarshalBinary's errors.
var ErrBadHistory = errors.New("fraud: bad history encoding")

// MarshalBinary encodes h.
func (h *History) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, historyMagic...)
	b = binary.AppendUvarint(b, uint64(len(h.peaks)))
	for _, x := range []int64{h.first, h.lastHour, h.lastDay, h.bloomEpoch} {
		b = binary.AppendVarint(b, x)
	}
	b = appendSparse(b, h.hours, appendFloat)
	b = appendSparse(b, h.peaks, func(b []byte, p Peaks32) []byte {
		for _, v := range [5]float32{p.PerMinute, p.PerSecond, p.Distinct, p.SameBody, p.PerHour} {
			b = appendFloat(b, v)
		}
		return b
	})
	b = binary.AppendUvarint(b, uint64(len(h.sources)))
	for _, s := range h.sources {
		b = binary.LittleEndian.AppendUint32(b, s.network)
		b = binary.LittleEndian.AppendUint32(b, s.agent)
		b = binary.AppendVarint(b, s.hour)
	}
	b = appendSparse(b, slices.Concat(h.bloom[0][:], h.bloom[1][:]), binary.LittleEndian.AppendUint64)
	return b, nil
}

// appendSparse writes how many of xs are not zero, then for each of those
// the distance of its index from the one before (from -1 for the first)
// and its value.
func appendSparse[T comparable](b []byte, xs []T, put func([]byte, T) []byte) []byte {
	var zero T
	count := 0
	for _, x := range xs {
		if x != zero {
			count++
		}
	}
	b = binary.AppendUvarint(b, uint64(count))
	prev := -1
	for i, x := range xs {
		if x != zero {
			b = put(binary.AppendUvarint(b, uint64(i-prev)), x)
			prev = i
		}
	}
	return b
}

func appendFloat(b []byte, v float32) []byte {
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
}

// UnmarshalBinary decodes what MarshalBinary wrote. It is written for
// untrusted input (a corrupted store): every count and index is checked,
// nothing is allocated beyond the retention's size, and trailing bytes are
// an error.
func (h *History) UnmarshalBinary(data []byte) error {
	rest, ok := bytes.CutPrefix(data, []byte(historyMagic))
	if !ok {
		return fmt.Errorf("%w: not a history (magic)", ErrBadHistory)
	}
	d := decoder{b: rest}
	days := d.uvarint(MaxRetentionDays)
	if d.err == nil && days < 1 {
		d.fail("retention 0")
	}
	var out History
	out.SetRetention(int(days))
	out.first, out.lastHour, out.lastDay, out.bloomEpoch = d.varint(), d.varint(), d.varint(), d.varint()
	sparse(&d, out.hours, "hour", func() (float32, bool) {
		v := d.float()
		return v, v > 0
	})
	sparse(&d, out.peaks, "day", func() (Peaks32, bool) {
		p := Peaks32{d.float(), d.float(), d.float(), d.float(), d.float()}
		return p, p.PerMinute >= 0 && p.PerSecond >= 0 && p.Distinct >= 0 && p.SameBody >= 0 && p.PerHour >= 0
	})
	for range d.uvarint(MaxSources) {
		out.sources = append(out.sources, source{network: d.uint32(), agent: d.uint32(), hour: d.varint()})
	}
	words := make([]uint64, 2*bloomWords)
	sparse(&d, words, "bloom word", func() (uint64, bool) { return d.uint64(), true })
	copy(out.bloom[0][:], words)
	copy(out.bloom[1][:], words[bloomWords:])
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadHistory, len(d.b))
	}
	*h = out
	return nil
}

// sparse reads what appendSparse wrote into dst; read decodes one value
// and tells whether it is valid.
func sparse[T any](d *decoder, dst []T, what string, read func() (T, bool)) {
	idx := -1
	for range d.uvarint(uint64(len(dst))) {
		idx += int(d.uvarint(uint64(len(dst))))
		v, ok := read()
		if d.err != nil {
			return
		}
		if idx < 0 || idx >= len(dst) || !ok {
			d.fail(fmt.Sprintf("%s %d", what, idx))
			return
		}
		dst[idx] = v
	}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadHistory, what)
	}
}

func (d *decoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated varint")
		return 0
	}
	d.b = d.b[n:]
	if v > limit {
		d.fail(fmt.Sprintf("count %d above %d", v, limit))
		return 0
	}
	return v
}

// varint reads a zig-zag varint, as binary.Varint does.
func (d *decoder) varint() int64 {
	u := d.uvarint(math.MaxUint64)
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// take consumes n bytes; zeros when there are not that many.
func (d *decoder) take(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail("truncated")
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint32() uint32 { return binary.LittleEndian.Uint32(d.take(4)) }
func (d *decoder) uint64() uint64 { return binary.LittleEndian.Uint64(d.take(8)) }

func (d *decoder) float() float32 {
	v := math.Float32frombits(d.uint32())
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		d.fail("not a finite number")
		return 0
	}
	return v
}
