package voice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// frame is one unit of media read from a file: what to send, when to send
// it (from the file's start), and how long it plays.
type frame struct {
	data []byte
	at   time.Duration
	dur  time.Duration
}

// source reads frames from a media file.
type source interface {
	next() (frame, error) // io.EOF at the end
	Close() error
}

// oggSource reads an Ogg Opus file whose every page holds one Opus
// packet (see testdata/voice/README.md): pion's oggreader returns pages,
// and the Peer sends one page as one RTP packet. Each page's granule
// position, its last sample's number at 48 kHz, paces it.
type oggSource struct {
	f       *os.File
	r       *oggreader.OggReader
	granule uint64 // of the last page read
}

func openOgg(path string) (*oggSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, head, err := oggreader.NewWith(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if head.SampleRate == 0 {
		f.Close()
		return nil, fmt.Errorf("%s: no Opus head", path)
	}
	return &oggSource{f: f, r: r}, nil
}

// opusRate is Opus's sample clock: granule positions count 48 kHz samples
// whatever the input's rate was.
const opusRate = 48000

func (o *oggSource) next() (frame, error) {
	for {
		data, page, err := o.r.ParseNextPage()
		if err != nil {
			return frame{}, err
		}
		if page.GranulePosition == 0 || page.GranulePosition <= o.granule {
			continue // the OpusTags header page, or a page that ends no packet
		}
		samples := page.GranulePosition - o.granule
		// A page with more samples than its first packet holds more than
		// one packet. (The last page may hold fewer: the encoder trims
		// the end of the stream by the granule position.)
		if o.granule > 0 {
			if n, ok := opusSamples(data); ok && uint64(n) < samples {
				return frame{}, fmt.Errorf("%s: an Ogg page holds %d samples but its first Opus packet %d: "+
					"the file must have one packet per page (ffmpeg -page_duration 20000)", o.f.Name(), samples, n)
			}
		}
		f := frame{data: data, at: samplesToDuration(o.granule), dur: samplesToDuration(samples)}
		o.granule = page.GranulePosition
		return f, nil
	}
}

func (o *oggSource) Close() error { return o.f.Close() }

func samplesToDuration(n uint64) time.Duration {
	return time.Duration(n) * time.Second / opusRate
}

// opusSamples is how many 48 kHz samples an Opus packet holds, from its
// table-of-contents byte and frame count (RFC 6716, section 3.1).
func opusSamples(packet []byte) (int, bool) {
	if len(packet) == 0 {
		return 0, false
	}
	toc := packet[0]
	config := toc >> 3
	var frame int // samples per frame
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		frame = []int{480, 960, 1920, 2880}[config%4]
	case config < 16: // hybrid: 10, 20 ms
		frame = []int{480, 960}[config%2]
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = []int{120, 240, 480, 960}[config%4]
	}
	switch toc & 3 {
	case 0:
		return frame, true
	case 1, 2:
		return 2 * frame, true
	default:
		if len(packet) < 2 {
			return 0, false
		}
		return int(packet[1]&0x3f) * frame, true
	}
}

// ivfSource reads an IVF file of VP8 frames, paced at the frame rate its
// header gives (an encoder writes IVF at a constant rate; pion's reader
// scales frame timestamps by the time base in a way of its own, so they
// are not used).
type ivfSource struct {
	f        *os.File
	r        *ivfreader.IVFReader
	frameDur time.Duration
	frames   int // read so far
}

func openIVF(path string) (*ivfSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, head, err := ivfreader.NewWith(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if head.FourCC != "VP80" || head.TimebaseDenominator == 0 {
		f.Close()
		return nil, fmt.Errorf("%s: not VP8 (%q) or no time base", path, head.FourCC)
	}
	// The time base is num/den seconds a tick; a frame is one tick.
	frameDur := time.Duration(head.TimebaseNumerator) * time.Second / time.Duration(head.TimebaseDenominator)
	return &ivfSource{f: f, r: r, frameDur: frameDur}, nil
}

func (v *ivfSource) next() (frame, error) {
	data, _, err := v.r.ParseNextFrame()
	if err != nil {
		return frame{}, err
	}
	f := frame{data: data, at: time.Duration(v.frames) * v.frameDur, dur: v.frameDur}
	v.frames++
	return f, nil
}

func (v *ivfSource) Close() error { return v.f.Close() }

// sampleWriter is what a pion TrackLocalStaticSample does for play.
type sampleWriter interface {
	WriteSample(media.Sample) error
}

// play sends the file's frames to track in real time on clk, each at its
// time from the start; with loop, it starts again at the end, for as long
// as ctx lasts. While on says false, frames pass without being sent (a
// camera turned off). sent is told each sent frame's size.
func play(ctx context.Context, clk clock.Clock, open func() (source, error), loop bool, track sampleWriter,
	on func() bool, sent func(int)) error {
	start := clk.Now()
	var offset time.Duration // of this pass through the file
	timer := clk.Timer(0)
	defer timer.Stop()
	<-timer.C
	for {
		src, err := open()
		if err != nil {
			return err
		}
		var end time.Duration
		for {
			f, err := src.next()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			if err != nil {
				src.Close()
				return err
			}
			timer.Reset(clk.Until(start.Add(offset + f.at)))
			select {
			case <-ctx.Done():
				src.Close()
				return nil
			case <-timer.C:
			}
			end = f.at + f.dur
			if !on() {
				continue
			}
			if err := track.WriteSample(media.Sample{Data: f.data, Duration: f.dur}); err != nil {
				src.Close()
				return err
			}
			sent(len(f.data))
		}
		src.Close()
		if !loop || end == 0 {
			return nil
		}
		offset += end
	}
}
