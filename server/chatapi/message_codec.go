package chatapi

import (
	"strings"

	"github.com/tinylib/msgp/msgp"
)

// Message's encoder and decoder are written here rather than generated
// (codec.go's go:generate line leaves Message out). They write and read
// the same bytes as the generated ones would, which codec_test.go checks
// against go-msgpack's reflection both ways, but the decoder copies a
// message's five strings out of the frame in one allocation instead of
// five. Every post is decoded many times (each member's client decodes
// its own copy of a Deliver batch, each destination server a Forward),
// and whoever keeps a message keeps what it needs in its own form (a
// client's view keeps the ID and text in one string of its own, a
// server's index none of them), so the five strings are garbage at once.

// Message field names as encoded.
const (
	msgKeyRoom   = "Room"
	msgKeyID     = "ID"
	msgKeyFrom   = "From"
	msgKeyText   = "Text"
	msgKeyStamp  = "Stamp"
	msgKeyTime   = "Time"
	msgKeyServer = "Server"
	msgKeySeq    = "Seq"
)

// MarshalMsg implements msgp.Marshaler: a map of the five fields, in the
// order declared, the stamp a map of its three.
func (z *Message) MarshalMsg(b []byte) ([]byte, error) {
	o := msgp.Require(b, z.Msgsize())
	o = msgp.AppendMapHeader(o, 5)
	o = msgp.AppendString(o, msgKeyRoom)
	o = msgp.AppendString(o, z.Room)
	o = msgp.AppendString(o, msgKeyID)
	o = msgp.AppendString(o, z.ID)
	o = msgp.AppendString(o, msgKeyFrom)
	o = msgp.AppendString(o, z.From)
	o = msgp.AppendString(o, msgKeyText)
	o = msgp.AppendString(o, z.Text)
	o = msgp.AppendString(o, msgKeyStamp)
	o = msgp.AppendMapHeader(o, 3)
	o = msgp.AppendString(o, msgKeyTime)
	o = msgp.AppendInt64(o, z.Stamp.Time)
	o = msgp.AppendString(o, msgKeyServer)
	o = msgp.AppendString(o, z.Stamp.Server)
	o = msgp.AppendString(o, msgKeySeq)
	o = msgp.AppendUint64(o, z.Stamp.Seq)
	return o, nil
}

// Msgsize returns an upper bound of the encoded size.
func (z *Message) Msgsize() int {
	return 1 + 5 + msgp.StringPrefixSize + len(z.Room) + 3 + msgp.StringPrefixSize + len(z.ID) +
		5 + msgp.StringPrefixSize + len(z.From) + 5 + msgp.StringPrefixSize + len(z.Text) +
		6 + 1 + 5 + msgp.Int64Size + 7 + msgp.StringPrefixSize + len(z.Stamp.Server) + 4 + msgp.Uint64Size
}

// The string fields of a Message, as the decoder finds them.
const (
	fieldRoom = iota
	fieldID
	fieldFrom
	fieldText
	fieldServer
	stringFields
)

// UnmarshalMsg implements msgp.Unmarshaler as the generated decoder
// would: fields in any order, a repeated one taking its last value,
// unknown ones skipped, absent ones left as they were. The strings it
// finds are copied into one new string, of which each field is a part.
func (z *Message) UnmarshalMsg(bts []byte) ([]byte, error) { return z.unmarshal(bts, false) }

// unmarshalBorrowed is UnmarshalMsg with no copy: each string field is
// set to point into bts (see DeliverArgs.UnmarshalMsgBorrowed).
func (z *Message) unmarshalBorrowed(bts []byte) ([]byte, error) { return z.unmarshal(bts, true) }

// unmarshal is UnmarshalMsg, or unmarshalBorrowed if borrow.
func (z *Message) unmarshal(bts []byte, borrow bool) ([]byte, error) {
	var raw [stringFields][]byte // zero-copy, into bts
	var found [stringFields]bool
	n, bts, err := msgp.ReadMapHeaderBytes(bts)
	if err != nil {
		return bts, msgp.WrapError(err)
	}
	for ; n > 0; n-- {
		var key []byte
		if key, bts, err = msgp.ReadMapKeyZC(bts); err != nil {
			return bts, msgp.WrapError(err)
		}
		f := -1
		switch msgp.UnsafeString(key) {
		case msgKeyRoom:
			f = fieldRoom
		case msgKeyID:
			f = fieldID
		case msgKeyFrom:
			f = fieldFrom
		case msgKeyText:
			f = fieldText
		case msgKeyStamp:
			if bts, err = z.Stamp.unmarshalInto(bts, &raw[fieldServer], &found[fieldServer]); err != nil {
				return bts, msgp.WrapError(err, msgKeyStamp)
			}
			continue
		default:
			if bts, err = msgp.Skip(bts); err != nil {
				return bts, msgp.WrapError(err)
			}
			continue
		}
		if raw[f], bts, err = msgp.ReadStringZC(bts); err != nil {
			return bts, msgp.WrapError(err, msgp.UnsafeString(key))
		}
		found[f] = true
	}
	dst := [stringFields]*string{&z.Room, &z.ID, &z.From, &z.Text, &z.Stamp.Server}
	if borrow {
		for f := range raw {
			if found[f] {
				*dst[f] = msgp.UnsafeString(raw[f])
			}
		}
		return bts, nil
	}
	size := 0
	for f := range raw {
		size += len(raw[f])
	}
	var all strings.Builder
	all.Grow(size)
	for f := range raw {
		all.Write(raw[f])
	}
	s := all.String()
	at := 0
	for f := range raw {
		if found[f] {
			*dst[f] = s[at : at+len(raw[f])]
		}
		at += len(raw[f])
	}
	return bts, nil
}

// unmarshalInto reads a stamp as the generated decoder of a Message
// would, except that its server name is left in bts: server is set to it
// and found to true when the field is there.
func (z *Stamp) unmarshalInto(bts []byte, server *[]byte, found *bool) ([]byte, error) {
	n, bts, err := msgp.ReadMapHeaderBytes(bts)
	if err != nil {
		return bts, err
	}
	for ; n > 0; n-- {
		var key []byte
		if key, bts, err = msgp.ReadMapKeyZC(bts); err != nil {
			return bts, err
		}
		switch msgp.UnsafeString(key) {
		case msgKeyTime:
			if z.Time, bts, err = msgp.ReadInt64Bytes(bts); err != nil {
				return bts, msgp.WrapError(err, msgKeyTime)
			}
		case msgKeyServer:
			if *server, bts, err = msgp.ReadStringZC(bts); err != nil {
				return bts, msgp.WrapError(err, msgKeyServer)
			}
			*found = true
		case msgKeySeq:
			if z.Seq, bts, err = msgp.ReadUint64Bytes(bts); err != nil {
				return bts, msgp.WrapError(err, msgKeySeq)
			}
		default:
			if bts, err = msgp.Skip(bts); err != nil {
				return bts, err
			}
		}
	}
	return bts, nil
}
