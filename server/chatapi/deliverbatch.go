package chatapi

import (
	"context"

	"github.com/tinylib/msgp/msgp"
)

// DeliverBatch is how a server sends a Deliver: DeliverArgs with each
// message already encoded (EncodeMessages). A server hands one message to
// every local member of its room, so it encodes the message once for all
// of them instead of once per member, and the copies waiting in the
// members' queues are byte slices, which the garbage collector does not
// look into. A DeliverBatch encodes to exactly the bytes of the
// DeliverArgs it stands for (deliverbatch_test.go checks), so the client
// decodes a DeliverArgs and nothing on the wire changes.
//
// Only the sending side is written: no one decodes a DeliverBatch.
type DeliverBatch struct {
	Messages []msgp.Raw // each one Message, encoded
	Events   []Event
	Settled  map[string]int64
}

// EncodeMessages encodes each of msgs for a DeliverBatch. The encodings
// share one buffer, so a batch of messages costs one allocation.
func EncodeMessages(msgs []Message) []msgp.Raw {
	size := 0
	for i := range msgs {
		size += msgs[i].Msgsize()
	}
	buf := make([]byte, 0, size)
	out := make([]msgp.Raw, len(msgs))
	for i := range msgs {
		start := len(buf)
		buf, _ = msgs[i].MarshalMsg(buf) // cannot fail: a Message has no interface fields
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out
}

// MarshalMsg implements msgp.Marshaler, writing what DeliverArgs's
// generated MarshalMsg writes: a map of the three fields, in order, with
// nil for a nil slice or map (the fields' allownil).
func (z *DeliverBatch) MarshalMsg(b []byte) ([]byte, error) {
	o := msgp.Require(b, z.Msgsize())
	o = msgp.AppendMapHeader(o, 3)
	o = msgp.AppendString(o, "Messages")
	if z.Messages == nil {
		o = msgp.AppendNil(o)
	} else {
		o = msgp.AppendArrayHeader(o, uint32(len(z.Messages)))
		for _, m := range z.Messages {
			o = append(o, m...)
		}
	}
	o = msgp.AppendString(o, "Events")
	if z.Events == nil {
		o = msgp.AppendNil(o)
	} else {
		o = msgp.AppendArrayHeader(o, uint32(len(z.Events)))
		for i := range z.Events {
			var err error
			if o, err = z.Events[i].MarshalMsg(o); err != nil {
				return nil, msgp.WrapError(err, "Events", i)
			}
		}
	}
	o = msgp.AppendString(o, "Settled")
	if z.Settled == nil {
		o = msgp.AppendNil(o)
	} else {
		o = msgp.AppendMapHeader(o, uint32(len(z.Settled)))
		for room, t := range z.Settled {
			o = msgp.AppendString(o, room)
			o = msgp.AppendInt64(o, t)
		}
	}
	return o, nil
}

// Msgsize returns an upper bound of the encoded size.
func (z *DeliverBatch) Msgsize() int {
	s := 1 + 9 + msgp.ArrayHeaderSize + 7 + msgp.ArrayHeaderSize + 8 + msgp.MapHeaderSize
	for _, m := range z.Messages {
		s += len(m)
	}
	for i := range z.Events {
		s += z.Events[i].Msgsize()
	}
	for room := range z.Settled {
		s += msgp.StringPrefixSize + len(room) + msgp.Int64Size
	}
	return s
}

// DeliverBatch calls the client's Deliver with a batch whose messages are
// encoded already: the server's side of Callback.Deliver.
func (s CallbackStub) DeliverBatch(ctx context.Context, a DeliverBatch) error {
	return s.Inv.Invoke(ctx, CallbackObjectName, "Deliver", &a, nil)
}
