package chatapi

import "github.com/tinylib/msgp/msgp"

// UnmarshalMsgBorrowed decodes a DeliverArgs as UnmarshalMsg does, except
// that the string fields of its Messages point into bts instead of into
// copies: they are valid only while bts is neither changed nor reused.
// Its Events and Settled are copies, as UnmarshalMsg makes them.
//
// It is how a client decodes a Deliver (rmi.BorrowArgs): the request's
// buffer lives until the callback returns, and a client's view keeps what
// it needs of a message in its own form (the ID and text in its arena,
// the names in its table), so copying every message's strings out of the
// frame first was a copy and an allocation per message, per member, that
// became garbage at once. Whoever keeps a borrowed message, or one of its
// strings, past that must copy it.
func (z *DeliverArgs) UnmarshalMsgBorrowed(bts []byte) ([]byte, error) {
	n, bts, err := msgp.ReadMapHeaderBytes(bts)
	if err != nil {
		return bts, msgp.WrapError(err)
	}
	for ; n > 0; n-- {
		var key []byte
		if key, bts, err = msgp.ReadMapKeyZC(bts); err != nil {
			return bts, msgp.WrapError(err)
		}
		switch msgp.UnsafeString(key) {
		case "Messages":
			if bts, err = readArray(bts, &z.Messages, (*Message).unmarshalBorrowed); err != nil {
				return bts, msgp.WrapError(err, "Messages")
			}
		case "Events":
			if bts, err = readArray(bts, &z.Events, (*Event).UnmarshalMsg); err != nil {
				return bts, msgp.WrapError(err, "Events")
			}
		case "Settled":
			if msgp.IsNil(bts) {
				bts, z.Settled = bts[1:], nil
				continue
			}
			var k uint32
			if k, bts, err = msgp.ReadMapHeaderBytes(bts); err != nil {
				return bts, msgp.WrapError(err, "Settled")
			}
			if z.Settled == nil {
				z.Settled = make(map[string]int64, k)
			} else {
				clear(z.Settled)
			}
			for ; k > 0; k-- {
				var room string
				var t int64
				if room, bts, err = msgp.ReadStringBytes(bts); err != nil {
					return bts, msgp.WrapError(err, "Settled")
				}
				if t, bts, err = msgp.ReadInt64Bytes(bts); err != nil {
					return bts, msgp.WrapError(err, "Settled", room)
				}
				z.Settled[room] = t
			}
		default:
			if bts, err = msgp.Skip(bts); err != nil {
				return bts, msgp.WrapError(err)
			}
		}
	}
	return bts, nil
}

// readArray decodes an array, or nil, into *s as msgp's generated code
// does: nil stays nil, a slice that is not nil and large enough is
// reused, else a new one is made; each element is decoded with dec.
func readArray[T any](bts []byte, s *[]T, dec func(*T, []byte) ([]byte, error)) ([]byte, error) {
	if msgp.IsNil(bts) {
		*s = nil
		return bts[1:], nil
	}
	k, bts, err := msgp.ReadArrayHeaderBytes(bts)
	if err != nil {
		return bts, err
	}
	if *s != nil && cap(*s) >= int(k) {
		*s = (*s)[:k]
	} else {
		*s = make([]T, k)
	}
	for i := range *s {
		if bts, err = dec(&(*s)[i], bts); err != nil {
			return bts, msgp.WrapError(err, i)
		}
	}
	return bts, nil
}
