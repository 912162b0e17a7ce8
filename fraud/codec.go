package fraud

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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
	count := 0
	for _, v := range h.hours {
		if v != 0 {
			count++
		}
	}
	b = binary.AppendUvarint(b, uint64(count))
	prev := -1
	for i, v := range h.hours {
		if v != 0 {
			b = binary.AppendUvarint(b, uint64(i-prev))
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
			prev = i
		}
	}
	count = 0
	for _, p := range h.peaks {
		if p != (Peaks32{}) {
			count++
		}
	}
	b = binary.AppendUvarint(b, uint64(count))
	prev = -1
	for i, p := range h.peaks {
		if p != (Peaks32{}) {
			b = binary.AppendUvarint(b, uint64(i-prev))
			for _, v := range [5]float32{p.PerMinute, p.PerSecond, p.Distinct, p.SameBody, p.PerHour} {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
			}
			prev = i
		}
	}
	b = binary.AppendUvarint(b, uint64(len(h.sources)))
	for _, s := range h.sources {
		b = binary.LittleEndian.AppendUint32(b, s.network)
		b = binary.LittleEndian.AppendUint32(b, s.agent)
		b = binary.AppendVarint(b, s.hour)
	}
	count = 0
	for g := range h.bloom {
		for _, w := range h.bloom[g] {
			if w != 0 {
				count++
			}
		}
	}
	b = binary.AppendUvarint(b, uint64(count))
	prev = -1
	for g := range h.bloom {
		for i, w := range h.bloom[g] {
			if w != 0 {
				idx := g*bloomWords + i
				b = binary.AppendUvarint(b, uint64(idx-prev))
				b = binary.LittleEndian.AppendUint64(b, w)
				prev = idx
			}
		}
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote. It is written for
// untrusted input (a corrupted store): every count and index is checked,
// nothing is allocated beyond the retention's size, and trailing bytes are
// an error.
func (h *History) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	if len(data) < len(historyMagic) || string(data[:len(historyMagic)]) != historyMagic {
		return fmt.Errorf("%w: not a history (magic)", ErrBadHistory)
	}
	d.b = d.b[len(historyMagic):]
	days := d.uvarint(MaxRetentionDays)
	if d.err == nil && days < 1 {
		d.fail("retention 0")
	}
	var hd [4]int64
	for i := range hd {
		hd[i] = d.varint()
	}
	if d.err != nil {
		return d.err
	}
	var out History
	out.SetRetention(int(days))
	out.first, out.lastHour, out.lastDay, out.bloomEpoch = hd[0], hd[1], hd[2], hd[3]
	idx := -1
	for range d.uvarint(uint64(len(out.hours))) {
		idx += int(d.uvarint(uint64(len(out.hours))))
		v := d.float()
		if d.err != nil {
			return d.err
		}
		if idx < 0 || idx >= len(out.hours) || v <= 0 {
			return fmt.Errorf("%w: hour %d", ErrBadHistory, idx)
		}
		out.hours[idx] = v
	}
	idx = -1
	for range d.uvarint(uint64(len(out.peaks))) {
		idx += int(d.uvarint(uint64(len(out.peaks))))
		p := Peaks32{d.float(), d.float(), d.float(), d.float(), d.float()}
		if d.err != nil {
			return d.err
		}
		if idx < 0 || idx >= len(out.peaks) || p.PerMinute < 0 || p.PerSecond < 0 || p.Distinct < 0 || p.SameBody < 0 || p.PerHour < 0 {
			return fmt.Errorf("%w: day %d", ErrBadHistory, idx)
		}
		out.peaks[idx] = p
	}
	n := d.uvarint(MaxSources)
	for range n {
		s := source{network: d.uint32(), agent: d.uint32(), hour: d.varint()}
		if d.err != nil {
			return d.err
		}
		out.sources = append(out.sources, s)
	}
	idx = -1
	for range d.uvarint(2 * bloomWords) {
		idx += int(d.uvarint(2 * bloomWords))
		w := d.uint64()
		if d.err != nil {
			return d.err
		}
		if idx < 0 || idx >= 2*bloomWords {
			return fmt.Errorf("%w: bloom word %d", ErrBadHistory, idx)
		}
		out.bloom[idx/bloomWords][idx%bloomWords] = w
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadHistory, len(d.b))
	}
	*h = out
	return nil
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

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("truncated varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint32() uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) uint64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) float() float32 {
	v := math.Float32frombits(d.uint32())
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		d.fail("not a finite number")
		return 0
	}
	return v
}
