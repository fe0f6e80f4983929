package voice

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/distchat/distchat/rmi/rmitest"
)

// oggPayloads returns the payloads of an Ogg file's audio pages (those
// past the two header pages): one Opus packet each, in the files here.
func oggPayloads(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out [][]byte
	for {
		payload, page, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if page.GranulePosition > 0 {
			out = append(out, payload)
		}
	}
}

// freeUDPPort returns a UDP port on loopback that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// containsLine reports whether some line of text contains s.
func containsLine(text, s string) bool {
	for line := range strings.Lines(text) {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"ann", "room-1", "a.b_c@d", strings.Repeat("x", maxIDLen)} {
		if err := checkID(id); err != nil {
			t.Errorf("checkID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", "a b", "a/b", "ü", strings.Repeat("x", maxIDLen+1)} {
		if err := checkID(id); !errors.Is(err, ErrBadID) {
			t.Errorf("checkID(%q) = %v, want ErrBadID", id, err)
		}
	}
}

func TestOpusSamples(t *testing.T) {
	for _, c := range []struct {
		packet []byte
		want   int
	}{
		{[]byte{1<<3 | 0}, 960},            // SILK 20 ms, one frame
		{[]byte{3<<3 | 1}, 2 * 2880},       // SILK 60 ms, two frames
		{[]byte{13<<3 | 2}, 2 * 960},       // hybrid 20 ms, two frames
		{[]byte{31<<3 | 0}, 960},           // CELT 20 ms
		{[]byte{28<<3 | 3, 0x03}, 3 * 120}, // CELT 2.5 ms, three frames (code 3)
	} {
		got, ok := opusSamples(c.packet)
		if !ok || got != c.want {
			t.Errorf("opusSamples(%x) = %d, %v; want %d", c.packet, got, ok, c.want)
		}
	}
	if _, ok := opusSamples(nil); ok {
		t.Error("opusSamples(nil) ok")
	}
}

// TestTestdataPacing: the committed files have one Opus packet per page,
// 20 ms each, three seconds long.
func TestTestdataPacing(t *testing.T) {
	for _, name := range []string{"tone_a.ogg", "tone_b.ogg", "tone_c.ogg"} {
		src, err := openOgg(mediaFile(name))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		var end frame
		for {
			f, err := src.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if n > 0 && end.dur.Milliseconds() != 20 {
				t.Fatalf("%s: frame %d lasts %v, want 20ms", name, n-1, end.dur)
			}
			n++
			end = f
		}
		src.Close()
		// 150 packets of 20 ms and one that ends the stream at 3 s and the
		// encoder's pre-skip of 312 samples (6.5 ms).
		if n != 151 || end.at+end.dur != 3006500*time.Microsecond {
			t.Errorf("%s: %d frames ending at %v, want 151 ending at 3.0065s", name, n, end.at+end.dur)
		}
	}
	v, err := openIVF(mediaFile("testsrc_vp8.ivf"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var last frame
	frames := 0
	for {
		f, err := v.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frames++
		last = f
	}
	// 2 s at 15 frames a second.
	if frames != 30 || last.at+last.dur != 30*(time.Second/15) {
		t.Errorf("%d VP8 frames ending at %v, want 30 ending at 2s", frames, last.at+last.dur)
	}
}

// TestAudioLevelHeader: the level is read from its header extension, and
// forwarding keeps that extension only.
func TestAudioLevelHeader(t *testing.T) {
	h := rtp.Header{}
	level, err := rtp.AudioLevelExtension{Level: 30, Voice: true}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SetExtension(1, level); err != nil {
		t.Fatal(err)
	}
	if err := h.SetExtension(3, []byte{0, 7}); err != nil {
		t.Fatal(err)
	}
	if got, ok := audioLevel(&h, 1); !ok || got != 30 {
		t.Errorf("audioLevel = %d, %v; want 30", got, ok)
	}
	if _, ok := audioLevel(&h, 2); ok {
		t.Error("audioLevel of an absent extension ok")
	}
	keepOnly(&h, 1)
	if ids := h.GetExtensionIDs(); len(ids) != 1 || ids[0] != 1 {
		t.Errorf("after keepOnly(1): extensions %v, want [1]", ids)
	}
	keepOnly(&h, 0)
	if h.Extension || len(h.GetExtensionIDs()) != 0 {
		t.Errorf("after keepOnly(0): extension %v %v, want none", h.Extension, h.GetExtensionIDs())
	}
}

// TestOutboxOrder: signals reach send in order, the last one after all
// the others, then close's function runs, and the goroutine ends.
func TestOutboxOrder(t *testing.T) {
	var got rmitest.SyncBuffer
	o := newOutbox(func(s Signal) { got.Write([]byte(s.Kind + "\n")) })
	o.put(Signal{Kind: KindOffer})
	o.put(Signal{Kind: KindCandidate})
	o.close(Signal{Kind: KindBye}, func() { got.Write([]byte("after\n")) })
	o.put(Signal{Kind: KindAnswer}) // after close: dropped
	o.close(Signal{Kind: KindBye}, func() { t.Error("a second close's function ran") })
	o.wait()
	if lines := got.Lines(); strings.Join(lines, " ") != "offer candidate bye after" {
		t.Errorf("sent %v, want offer candidate bye after", lines)
	}
}

// TestOutboxClosedFromItsSend: a send that closes its own outbox (an
// answer that removes the participant at once, from a peer in the same
// process) does not wait for itself: the last signal and close's function
// follow, and the goroutine ends. (The SFU once waited for the outbox
// there, and a test's peer hung in it.)
func TestOutboxClosedFromItsSend(t *testing.T) {
	var got rmitest.SyncBuffer
	var o *outbox
	ready := make(chan struct{})
	o = newOutbox(func(s Signal) {
		<-ready
		got.Write([]byte(s.Kind + "\n"))
		if s.Kind == KindOffer {
			o.close(Signal{Kind: KindBye}, func() { got.Write([]byte("after\n")) })
		}
	})
	o.put(Signal{Kind: KindOffer})
	close(ready)
	o.wait()
	if lines := got.Lines(); strings.Join(lines, " ") != "offer bye after" {
		t.Errorf("sent %v, want offer bye after", lines)
	}
}
