package rmi

import (
	"bytes"
	"math"
	"net/rpc"
	"testing"
	"unsafe"

	"pgregory.net/rapid"
)

// envelopeFrame encodes head and body as a frame's body, as a conn sends it.
func envelopeFrame(t interface {
	Fatal(...any)
	Helper()
}, head, body any) []byte {
	t.Helper()
	w, err := encodeFrame(frameRequest, head, body)
	if err != nil {
		t.Fatal(err)
	}
	defer w.release()
	return bytes.Clone(w.b[frameHeaderLen:])
}

// afterHeader encodes head (a net/rpc header) and env as a frame's body,
// decodes the header as a conn does, and returns the bytes after it, from
// where the codec left off.
func afterHeader[H any](t *rapid.T, head *H, env any) []byte {
	body := envelopeFrame(t, head, env)
	dec := getDecoder(body)
	defer putDecoder(dec)
	var hdr H
	if err := dec.Decode(&hdr); err != nil {
		t.Fatal(err)
	}
	return body[dec.NumBytesRead():]
}

// within reports whether the bytes of v lie inside b.
func within(v, b []byte) bool {
	if len(v) == 0 {
		return true
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	return p >= start && p+uintptr(len(v)) <= start+uintptr(len(b))
}

func drawBytes(t *rapid.T, label string) []byte {
	switch rapid.IntRange(0, 3).Draw(t, label+"-kind") {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2: // past bin8 and bin16 sizes
		return bytes.Repeat([]byte{byte(rapid.IntRange(0, 255).Draw(t, label+"-fill"))}, rapid.SampledFrom([]int{255, 256, 65535, 65536, 70000}).Draw(t, label+"-len"))
	default:
		return rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, label)
	}
}

// TestDecodeRequestLikeTheCodec encodes random requests behind a net/rpc
// header, as a conn sends them, and requires decodeRequest to read each
// one, from where the codec left off after the header, exactly as the
// codec decodes it, with Args pointing into the frame rather than copied.
func TestDecodeRequestLikeTheCodec(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := Request{
			Object:  rapid.String().Draw(t, "object"),
			Method:  rapid.String().Draw(t, "method"),
			Timeout: rapid.OneOf(rapid.Int64(), rapid.SampledFrom([]int64{0, -1, math.MinInt64, math.MaxInt64, 127, 128, 1 << 40})).Draw(t, "timeout"),
			Args:    drawBytes(t, "args"),
		}
		rest := afterHeader(t, &rpc.Request{ServiceMethod: serviceMethod, Seq: 7}, &in)
		var want Request
		if err := getDecoder(rest).Decode(&want); err != nil {
			t.Fatal(err)
		}
		var got Request
		if !decodeRequest(rest, &got) {
			t.Fatalf("decodeRequest refused a request the codec encoded: %+v", in)
		}
		if got.Object != want.Object || got.Method != want.Method || got.Timeout != want.Timeout || !bytes.Equal(got.Args, want.Args) {
			t.Fatalf("decodeRequest: %q %q %d %d bytes; the codec: %q %q %d %d bytes",
				got.Object, got.Method, got.Timeout, len(got.Args), want.Object, want.Method, want.Timeout, len(want.Args))
		}
		if !within(got.Args, rest) {
			t.Fatal("Args was copied, not left in the frame")
		}
	})
}

// TestDecodeResponseLikeTheCodec does the same for responses.
func TestDecodeResponseLikeTheCodec(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := Response{
			Result:  drawBytes(t, "result"),
			ErrCode: rapid.String().Draw(t, "code"),
			ErrMsg:  rapid.String().Draw(t, "msg"),
			Failed:  rapid.Bool().Draw(t, "failed"),
		}
		rest := afterHeader(t, &rpc.Response{ServiceMethod: serviceMethod, Seq: 9}, &in)
		var want Response
		if err := getDecoder(rest).Decode(&want); err != nil {
			t.Fatal(err)
		}
		var got Response
		if !decodeResponse(rest, &got) {
			t.Fatalf("decodeResponse refused a response the codec encoded: %+v", in)
		}
		if got.ErrCode != want.ErrCode || got.ErrMsg != want.ErrMsg || got.Failed != want.Failed || !bytes.Equal(got.Result, want.Result) {
			t.Fatalf("decodeResponse: %+v; the codec: %+v", got, want)
		}
		if !within(got.Result, rest) {
			t.Fatal("Result was copied, not left in the frame")
		}
	})
}

// TestDecodeEnvelopeLeavesTheRestToTheCodec: a truncated envelope, one
// with bytes after it, or one in a shape go-msgpack would also accept
// (a request as a map, a response short of a field) is refused and left
// untouched, so that the codec decides about it as before.
func TestDecodeEnvelopeLeavesTheRestToTheCodec(t *testing.T) {
	req := envelopeFrame(t, &Request{Object: "svc", Method: "Echo", Timeout: 5, Args: []byte{0x80}}, nil)
	resp := envelopeFrame(t, &Response{Result: []byte{0xc0}, ErrMsg: "x"}, nil)
	// envelopeFrame encodes head then body; with a nil body the codec writes
	// a nil after the envelope, which is itself "bytes after it".
	req, resp = req[:len(req)-1], resp[:len(resp)-1]
	var r Request
	var p Response
	if !decodeRequest(req, &r) || !decodeResponse(resp, &p) {
		t.Fatal("the whole envelopes were refused")
	}
	for i := range len(req) {
		r = Request{Object: "untouched"}
		if decodeRequest(req[:i], &r) || r.Object != "untouched" {
			t.Fatalf("request cut to %d of %d bytes: accepted or changed (%+v)", i, len(req), r)
		}
	}
	for i := range len(resp) {
		p = Response{ErrMsg: "untouched"}
		if decodeResponse(resp[:i], &p) || p.ErrMsg != "untouched" {
			t.Fatalf("response cut to %d of %d bytes: accepted or changed (%+v)", i, len(resp), p)
		}
	}
	if decodeRequest(append(bytes.Clone(req), 0xc0), &r) || decodeResponse(append(bytes.Clone(resp), 0xc0), &p) {
		t.Fatal("an envelope with a byte after it was accepted")
	}
	asMap := envelopeFrame(t, map[string]any{"Object": "svc", "Method": "Echo", "Timeout": 5, "Args": []byte{0x80}}, nil)
	if decodeRequest(asMap[:len(asMap)-1], &r) {
		t.Fatal("a request encoded as a map was accepted")
	}
	reordered := envelopeFrame(t, map[string]any{"Failed": false}, nil)
	if decodeResponse(reordered[:len(reordered)-1], &p) {
		t.Fatal("a response with one field was accepted")
	}
}
