package gossip

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// MaxMetaSize is the most node metadata memberlist carries (its MetaMaxSize;
// memberlist panics above it, so Encode refuses instead).
const MaxMetaSize = 512

// metaVersion is the first byte of encoded metadata. A decoder refuses other
// versions; fields added within a version are new protobuf field numbers,
// which older decoders skip.
const metaVersion = 1

// Protobuf field numbers of Meta, after the version byte.
const (
	metaFieldName  protowire.Number = 1
	metaFieldPool  protowire.Number = 2
	metaFieldActor protowire.Number = 3
	metaFieldSIP   protowire.Number = 4
	metaFieldHTTP  protowire.Number = 5
	metaFieldDNS   protowire.Number = 6
)

var (
	// ErrMetaTooLarge means encoded metadata would exceed MaxMetaSize bytes.
	ErrMetaTooLarge = errors.New("gossip: node metadata too large")
	// ErrMalformed means bytes received from another node (metadata or a
	// gossip message) could not be decoded.
	ErrMalformed = errors.New("gossip: malformed data")
)

// Meta is what a node tells the others about itself. It rides in memberlist
// node metadata, so its encoding must fit in MaxMetaSize bytes, and changing
// it (UpdateMeta) re-gossips it to every node.
type Meta struct {
	Name  string // human node name (--name); not unique across restarts
	Pool  string // the pool this node serves (--pool)
	Actor string // protoactor remote host:port (--actor)
	SIP   string // SIP host:port (--sip); may be empty
	HTTP  string // HTTP host:port (--http); may be empty
	DNS   string // DNS host:port (--dns); may be empty
}

// Validate checks that every address is host:port (or empty), every field is
// UTF-8, and the encoding fits in MaxMetaSize bytes.
func (m Meta) Validate() error {
	for _, f := range m.fields() {
		if !utf8.ValidString(*f.value) {
			return fmt.Errorf("gossip: metadata %s is not valid UTF-8", f.label)
		}
		if f.addr && *f.value != "" {
			if _, _, err := net.SplitHostPort(*f.value); err != nil {
				return fmt.Errorf("gossip: metadata %s %q is not host:port: %w", f.label, *f.value, err)
			}
		}
	}
	_, err := m.Encode()
	return err
}

// Encode returns the wire form of m: a version byte followed by protobuf
// fields. It returns an error wrapping ErrMetaTooLarge, never a longer
// slice, when the result would exceed MaxMetaSize.
func (m Meta) Encode() ([]byte, error) {
	size := 1
	for _, f := range m.fields() {
		if *f.value != "" {
			size += protowire.SizeTag(f.num) + protowire.SizeBytes(len(*f.value))
		}
	}
	if size > MaxMetaSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d; shorten the node name, pool or addresses", ErrMetaTooLarge, size, MaxMetaSize)
	}
	b := make([]byte, 0, size)
	b = append(b, metaVersion)
	for _, f := range m.fields() {
		if *f.value != "" {
			b = protowire.AppendTag(b, f.num, protowire.BytesType)
			b = protowire.AppendString(b, *f.value)
		}
	}
	return b, nil
}

// DecodeMeta parses metadata produced by Encode. Unknown fields are skipped
// (a newer node may add some); a wrong version, a truncated field, invalid
// UTF-8 or more than MaxMetaSize bytes is an error wrapping ErrMalformed.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) == 0 {
		return m, fmt.Errorf("%w: empty metadata", ErrMalformed)
	}
	if len(b) > MaxMetaSize {
		return m, fmt.Errorf("%w: metadata of %d bytes exceeds %d", ErrMalformed, len(b), MaxMetaSize)
	}
	if b[0] != metaVersion {
		return m, fmt.Errorf("%w: metadata version %d, want %d", ErrMalformed, b[0], metaVersion)
	}
	fields := m.fields()
	err := eachField(b[1:], "metadata", func(num protowire.Number, typ protowire.Type, v []byte) error {
		i := slices.IndexFunc(fields, func(f metaField) bool { return f.num == num })
		if i < 0 || typ != protowire.BytesType {
			return nil
		}
		s, _ := protowire.ConsumeString(v)
		if !utf8.ValidString(s) {
			return fmt.Errorf("%w: metadata field %d is not UTF-8", ErrMalformed, num)
		}
		*fields[i].value = s
		return nil
	})
	if err != nil {
		return Meta{}, err
	}
	return m, nil
}

type metaField struct {
	num   protowire.Number
	label string
	value *string
	addr  bool
}

// fields are m's fields, each with a pointer to its value.
func (m *Meta) fields() []metaField {
	return []metaField{
		{metaFieldName, "name", &m.Name, false},
		{metaFieldPool, "pool", &m.Pool, false},
		{metaFieldActor, "actor address", &m.Actor, true},
		{metaFieldSIP, "SIP address", &m.SIP, true},
		{metaFieldHTTP, "HTTP address", &m.HTTP, true},
		{metaFieldDNS, "DNS address", &m.DNS, true},
	}
}
