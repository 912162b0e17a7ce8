package gossip

import (
	"fmt"
	"maps"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Load is a node's load report, sampled from Config.LoadFunc and gossiped
// every Config.LoadInterval.
type Load struct {
	Activations map[string]int // live activations per actor kind
	ActiveCalls int
	CPU         float64 // 0..1 of the node's CPUs
	Draining    bool    // a draining node takes no new placements
}

func (l Load) clone() Load {
	l.Activations = maps.Clone(l.Activations)
	return l
}

// The first byte of every gossip user message and of the push-pull state
// says what follows. A receiver ignores types it does not know, so a newer
// node may add some.
const (
	msgLoadReport byte = 1 // one loadReport
	msgLoadTable  byte = 2 // every loadReport the sender holds (push-pull)
)

// maxMessageSize bounds what decodeMessage accepts. A push-pull table is
// about 100 bytes a member, so this is thousands of members.
const maxMessageSize = 1 << 20

// loadReport is one node's Load as it travels. Epoch and Seq order the
// reports of one sender: a receiver keeps a report only when it is newer than
// the one it holds, whatever order gossip delivers them in.
type loadReport struct {
	ID    string // sender's memberlist node name
	Addr  string // sender's gossip host:port, to sync with a sender memberlist has not announced
	Epoch uint64 // sender's start time in Unix nanoseconds: orders reports across a restart that reused the ID
	Seq   uint64 // sender's report counter within the epoch, from 1
	Load  Load
	// Leaving is set in the reports of a node that called Leave. memberlist
	// v0.7.0 tells its delegate that a node is gone, not whether it failed
	// or left; this flag tells.
	Leaving bool
}

// newerThan tells whether r supersedes o (both from the same sender).
func (r loadReport) newerThan(o loadReport) bool {
	if r.Epoch != o.Epoch {
		return r.Epoch > o.Epoch
	}
	return r.Seq > o.Seq
}

// Protobuf field numbers of loadReport and of one activation entry.
const (
	reportFieldID          protowire.Number = 1
	reportFieldEpoch       protowire.Number = 2
	reportFieldSeq         protowire.Number = 3
	reportFieldActiveCalls protowire.Number = 4 // zigzag
	reportFieldCPU         protowire.Number = 5 // fixed64 IEEE 754
	reportFieldDraining    protowire.Number = 6
	reportFieldActivation  protowire.Number = 7 // repeated, embedded
	reportFieldLeaving     protowire.Number = 8
	reportFieldAddr        protowire.Number = 9

	activationFieldKind  protowire.Number = 1
	activationFieldCount protowire.Number = 2 // zigzag

	tableFieldReport protowire.Number = 1 // repeated, embedded loadReport
)

// encodeLoadReport frames one report as a gossip user message.
func encodeLoadReport(r loadReport) []byte {
	return appendReport([]byte{msgLoadReport}, r)
}

// encodeLoadTable frames reports as push-pull state.
func encodeLoadTable(rs []loadReport) []byte {
	b := []byte{msgLoadTable}
	for _, r := range rs {
		b = protowire.AppendTag(b, tableFieldReport, protowire.BytesType)
		b = protowire.AppendBytes(b, appendReport(nil, r))
	}
	return b
}

// decodeMessage parses a gossip user message or push-pull state. It returns
// the reports it carries; known=false for a message type this version does
// not know (not an error: a newer node sent it).
func decodeMessage(b []byte) (reports []loadReport, known bool, err error) {
	if len(b) == 0 {
		return nil, false, fmt.Errorf("%w: empty message", ErrMalformed)
	}
	if len(b) > maxMessageSize {
		return nil, false, fmt.Errorf("%w: message of %d bytes exceeds %d", ErrMalformed, len(b), maxMessageSize)
	}
	switch b[0] {
	case msgLoadReport:
		r, err := consumeReport(b[1:])
		if err != nil {
			return nil, true, err
		}
		return []loadReport{r}, true, nil
	case msgLoadTable:
		err := eachField(b[1:], "load table", func(num protowire.Number, typ protowire.Type, v []byte) error {
			if num != tableFieldReport || typ != protowire.BytesType {
				return nil
			}
			v, _ = protowire.ConsumeBytes(v)
			r, err := consumeReport(v)
			reports = append(reports, r)
			return err
		})
		if err != nil {
			return nil, true, err
		}
		return reports, true, nil
	default:
		return nil, false, nil
	}
}

func appendReport(b []byte, r loadReport) []byte {
	b = protowire.AppendTag(b, reportFieldID, protowire.BytesType)
	b = protowire.AppendString(b, r.ID)
	b = protowire.AppendTag(b, reportFieldEpoch, protowire.VarintType)
	b = protowire.AppendVarint(b, r.Epoch)
	b = protowire.AppendTag(b, reportFieldSeq, protowire.VarintType)
	b = protowire.AppendVarint(b, r.Seq)
	if r.Load.ActiveCalls != 0 {
		b = protowire.AppendTag(b, reportFieldActiveCalls, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(int64(r.Load.ActiveCalls)))
	}
	if r.Load.CPU != 0 {
		b = protowire.AppendTag(b, reportFieldCPU, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(r.Load.CPU))
	}
	if r.Load.Draining {
		b = protowire.AppendTag(b, reportFieldDraining, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if r.Leaving {
		b = protowire.AppendTag(b, reportFieldLeaving, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if r.Addr != "" {
		b = protowire.AppendTag(b, reportFieldAddr, protowire.BytesType)
		b = protowire.AppendString(b, r.Addr)
	}
	for _, kind := range sortedKeys(r.Load.Activations) {
		var e []byte
		e = protowire.AppendTag(e, activationFieldKind, protowire.BytesType)
		e = protowire.AppendString(e, kind)
		e = protowire.AppendTag(e, activationFieldCount, protowire.VarintType)
		e = protowire.AppendVarint(e, protowire.EncodeZigZag(int64(r.Load.Activations[kind])))
		b = protowire.AppendTag(b, reportFieldActivation, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	return b
}

func consumeReport(b []byte) (loadReport, error) {
	var r loadReport
	err := eachField(b, "load report", func(num protowire.Number, typ protowire.Type, v []byte) error {
		if want, ok := reportFieldTypes[num]; !ok || typ != want {
			return nil
		}
		switch typ {
		case protowire.BytesType:
			v, _ = protowire.ConsumeBytes(v)
			switch num {
			case reportFieldID, reportFieldAddr:
				if !utf8.Valid(v) {
					return fmt.Errorf("%w: load report field %d is not UTF-8", ErrMalformed, num)
				}
				if num == reportFieldID {
					r.ID = string(v)
				} else {
					r.Addr = string(v)
				}
				return nil
			}
			kind, count, err := consumeActivation(v)
			if err != nil {
				return err
			}
			if r.Load.Activations == nil {
				r.Load.Activations = make(map[string]int)
			}
			r.Load.Activations[kind] = count
		case protowire.VarintType:
			v, _ := protowire.ConsumeVarint(v)
			switch num {
			case reportFieldEpoch:
				r.Epoch = v
			case reportFieldSeq:
				r.Seq = v
			case reportFieldActiveCalls:
				r.Load.ActiveCalls = int(protowire.DecodeZigZag(v))
			case reportFieldDraining:
				r.Load.Draining = v != 0
			case reportFieldLeaving:
				r.Leaving = v != 0
			}
		case protowire.Fixed64Type:
			v, _ := protowire.ConsumeFixed64(v)
			cpu := math.Float64frombits(v)
			if math.IsNaN(cpu) || math.IsInf(cpu, 0) {
				return fmt.Errorf("%w: load report CPU %v", ErrMalformed, cpu)
			}
			r.Load.CPU = cpu
		}
		return nil
	})
	if err != nil {
		return loadReport{}, err
	}
	if r.ID == "" {
		return loadReport{}, fmt.Errorf("%w: load report without sender id", ErrMalformed)
	}
	return r, nil
}

// reportFieldTypes are the wire types of the known loadReport fields.
var reportFieldTypes = map[protowire.Number]protowire.Type{
	reportFieldID: protowire.BytesType, reportFieldAddr: protowire.BytesType, reportFieldActivation: protowire.BytesType,
	reportFieldEpoch: protowire.VarintType, reportFieldSeq: protowire.VarintType, reportFieldActiveCalls: protowire.VarintType,
	reportFieldDraining: protowire.VarintType, reportFieldLeaving: protowire.VarintType,
	reportFieldCPU: protowire.Fixed64Type,
}

func consumeActivation(b []byte) (kind string, count int, err error) {
	err = eachField(b, "activation", func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == activationFieldKind && typ == protowire.BytesType:
			v, _ = protowire.ConsumeBytes(v)
			if !utf8.Valid(v) {
				return fmt.Errorf("%w: activation kind is not UTF-8", ErrMalformed)
			}
			kind = string(v)
		case num == activationFieldCount && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(v)
			count = int(protowire.DecodeZigZag(v))
		}
		return nil
	})
	return kind, count, err
}

// eachField calls f with the number, wire type and encoded value of each
// field of the protobuf message b; what names the message in errors.
func eachField(b []byte, what string, f func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %s tag: %v", ErrMalformed, what, protowire.ParseError(n))
		}
		b = b[n:]
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return fmt.Errorf("%w: %s field %d: %v", ErrMalformed, what, num, protowire.ParseError(n))
		}
		if err := f(num, typ, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
