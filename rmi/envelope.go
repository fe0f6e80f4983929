package rmi

import "github.com/tinylib/msgp/msgp"

// The envelopes of a call, Request and Response, are encoded by the
// go-msgpack codec like every net/rpc value here, and hold the method's
// argument or result as msgpack bytes of their own. Decoding an envelope
// with go-msgpack copies those bytes out of the frame into a new slice:
// for a Deliver batch or a Forward of 5-20 KB, a fresh allocation and a
// copy of the whole body per call, only for the method's decoder to read
// it once. The readers below decode the envelopes as go-msgpack encodes
// them, with the argument or result left in the frame's buffer; anything
// else (another encoder's choice of formats, a damaged frame) they leave
// to go-msgpack, so what is accepted, and the errors of what is not, stay
// the codec's.

// decodeRequest decodes b, a Request as go-msgpack encodes it (an array
// of Object, Method, Timeout and Args), into req with req.Args pointing
// into b. It reports false, with req unchanged, for any other encoding.
func decodeRequest(b []byte, req *Request) bool {
	n, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil || n != 4 {
		return false
	}
	object, b, err := msgp.ReadStringZC(b)
	if err != nil {
		return false
	}
	method, b, err := msgp.ReadStringZC(b)
	if err != nil {
		return false
	}
	timeout, b, err := msgp.ReadInt64Bytes(b)
	if err != nil {
		return false
	}
	args, b, ok := readBytesZC(b)
	if !ok || len(b) != 0 {
		return false
	}
	req.Object, req.Method, req.Timeout, req.Args = string(object), string(method), timeout, args
	return true
}

// decodeResponse decodes b, a Response as go-msgpack encodes it (a map
// of its four fields by name), into resp with resp.Result pointing into
// b. It reports false, with resp unchanged, for any other encoding.
func decodeResponse(b []byte, resp *Response) bool {
	n, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil || n != 4 {
		return false
	}
	var out Response
	var seen [4]bool // Result, ErrCode, ErrMsg, Failed
	for range n {
		var key []byte
		if key, b, err = msgp.ReadMapKeyZC(b); err != nil {
			return false
		}
		var i int
		var s []byte
		switch string(key) {
		case "Result":
			i = 0
			var ok bool
			if out.Result, b, ok = readBytesZC(b); !ok {
				return false
			}
		case "ErrCode":
			i = 1
			s, b, err = msgp.ReadStringZC(b)
			out.ErrCode = string(s)
		case "ErrMsg":
			i = 2
			s, b, err = msgp.ReadStringZC(b)
			out.ErrMsg = string(s)
		case "Failed":
			i = 3
			out.Failed, b, err = msgp.ReadBoolBytes(b)
		default:
			return false
		}
		if err != nil || seen[i] {
			return false
		}
		seen[i] = true
	}
	if len(b) != 0 {
		return false
	}
	*resp = out
	return true
}

// readBytesZC reads a msgpack bin, or nil (a nil slice), from the front
// of b without copying it.
func readBytesZC(b []byte) (v, rest []byte, ok bool) {
	if msgp.IsNil(b) {
		return nil, b[1:], true
	}
	v, rest, err := msgp.ReadBytesZC(b)
	return v, rest, err == nil
}
