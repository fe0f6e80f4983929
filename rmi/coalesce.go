package rmi

import (
	"encoding/binary"
	"net"
)

// yamux writes each frame it sends as two writes on the connection: the
// 12-byte header, then the body. Under TLS each write is a record of its
// own and a write system call of its own, so every call and every reply
// cost four of each instead of two. frameConn joins them: it holds back
// the header of a data frame that has a body and writes it together with
// the next write, which is that body (yamux's send loop is the only
// writer, and writes a frame's two parts back to back). Other frames
// pass straight through, as do bodies too large to be worth copying.
type frameConn struct {
	net.Conn
	hdr  [yamuxHeaderLen]byte
	held bool
	buf  []byte
}

const (
	// yamuxHeaderLen is the size of a yamux frame header: version, type,
	// flags (2 bytes), stream id (4), length (4).
	yamuxHeaderLen = 12
	// maxJoinedBody is the largest body copied to join its header; a
	// larger one is written after the header, as yamux does.
	maxJoinedBody = 64 << 10
)

// Write implements net.Conn.
func (c *frameConn) Write(p []byte) (int, error) {
	if c.held {
		c.held = false
		if len(p) > maxJoinedBody {
			if _, err := c.Conn.Write(c.hdr[:]); err != nil {
				return 0, err
			}
			return c.Conn.Write(p)
		}
		c.buf = append(append(c.buf[:0], c.hdr[:]...), p...)
		n, err := c.Conn.Write(c.buf)
		if cap(c.buf) > maxJoinedBody+yamuxHeaderLen {
			c.buf = nil // keep no large buffer on an idle connection
		}
		return max(n-yamuxHeaderLen, 0), err
	}
	// A data frame (version 0, type 0) with a body: hold the header.
	if len(p) == yamuxHeaderLen && p[0] == 0 && p[1] == 0 && binary.BigEndian.Uint32(p[8:]) > 0 {
		copy(c.hdr[:], p)
		c.held = true
		return len(p), nil
	}
	return c.Conn.Write(p)
}
