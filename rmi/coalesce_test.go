package rmi

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// writesConn records each Write as one entry.
type writesConn struct {
	net.Conn
	writes [][]byte
}

func (c *writesConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func yamuxHeader(typ byte, length uint32) []byte {
	h := make([]byte, yamuxHeaderLen)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:], 3)
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

func TestFrameConnJoinsHeaderAndBody(t *testing.T) {
	body := []byte("a reply")
	big := make([]byte, maxJoinedBody+1)
	steps := []struct {
		name  string
		write []byte
		n     int      // what Write returns
		out   [][]byte // the writes that reach the connection after this one
	}{
		{"a data header is held", yamuxHeader(0, uint32(len(body))), yamuxHeaderLen, nil},
		{"its body goes out with it", body, len(body), [][]byte{append(yamuxHeader(0, uint32(len(body))), body...)}},
		{"a window update passes", yamuxHeader(1, 4096), yamuxHeaderLen, [][]byte{yamuxHeader(1, 4096)}},
		{"a ping passes", yamuxHeader(2, 7), yamuxHeaderLen, [][]byte{yamuxHeader(2, 7)}},
		{"a data header without a body (a stream's FIN) passes", yamuxHeader(0, 0), yamuxHeaderLen, [][]byte{yamuxHeader(0, 0)}},
		{"a big body's header is held", yamuxHeader(0, uint32(len(big))), yamuxHeaderLen, nil},
		{"a big body is not copied", big, len(big), [][]byte{yamuxHeader(0, uint32(len(big))), big}},
	}
	rec := &writesConn{}
	c := &frameConn{Conn: rec}
	for _, s := range steps {
		before := len(rec.writes)
		n, err := c.Write(s.write)
		if err != nil || n != s.n {
			t.Fatalf("%s: Write = %d, %v; want %d", s.name, n, err, s.n)
		}
		got := rec.writes[before:]
		if len(got) != len(s.out) {
			t.Fatalf("%s: %d writes reached the connection, want %d", s.name, len(got), len(s.out))
		}
		for i := range got {
			if !bytes.Equal(got[i], s.out[i]) {
				t.Fatalf("%s: write %d is %x, want %x", s.name, i, got[i][:min(len(got[i]), 32)], s.out[i][:min(len(s.out[i]), 32)])
			}
		}
	}
}
