package trace

import (
	"bufio"
	"io"
	"strings"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server/chatapi"
)

// SVGOptions shape the space-time diagram WriteSVG draws.
type SVGOptions struct {
	// Title replaces the default title (e.g. "seed 7, wall clocks, 200ms
	// skew").
	Title string
	// Highlight is the causality counterexample, as in sim.Result.Pair: the
	// message X the author had seen and the message Y they posted next,
	// which was ordered before X. Their post, ack and deliver events are
	// drawn in red, numbered, and explained beside the diagram. With
	// neither From nor To set, the window is centred on them.
	Highlight []chatapi.Message
	// MaxEvents caps how many events are drawn (default 400); a longer
	// trace is cut to a window of this many consecutive events, and the
	// picture says so.
	MaxEvents int
	// From and To choose the window in virtual time (To zero: to the end).
	// With both zero the window is chosen automatically: around the
	// highlighted pair, else from just before the first post (the login
	// and room set-up traffic before it is skipped).
	From, To time.Duration
}

// DefaultSVGMaxEvents is the default of SVGOptions.MaxEvents.
const DefaultSVGMaxEvents = 400

// WriteSVG draws events as a space-time diagram in SVG: one vertical line
// per process (nodes, in the order given: central, servers, users; nodes
// found only in the events are added after them), virtual time running
// downwards with a time axis on the left, and one arrow per message from
// its sending event to its receiving event — requests (send to recv) solid,
// replies (reply to return) dashed, coloured by what they carry. A message
// the network lost ends in a red cross after a short stub; one that was
// never received for another reason (receiver down, caller gone) in a grey
// one. Posts, acks and deliveries are dots labelled with the message text
// and stamp; crashes and restarts are red and green bars.
//
// Time is linear within busy stretches; a stretch longer than a few
// typical network delays with no event at all is compressed to a grey band
// labelled with the time it stands for, so bursts stay readable.
//
// The output depends only on its arguments, so the same run gives the
// same bytes.
func WriteSVG(w io.Writer, events []Event, nodes []string, opt SVGOptions) error {
	d := newSVGDiagram(events, nodes, opt)
	bw := bufio.NewWriter(w)
	d.render(bw)
	return bw.Flush()
}

// Colours and sizes.
const (
	svgRed       = "#d62728"
	svgBlue      = "#1f6fb4"
	svgPurple    = "#8e44ad"
	svgGreen     = "#2a9d3a"
	svgGrey      = "#9aa0a6"
	svgDark      = "#333333"
	svgOrange    = "#e67e22"
	svgFont      = "Helvetica, Arial, sans-serif"
	svgLabelSize = 10.0
	svgAxisW     = 104.0 // left margin holding the time axis
	svgBreakH    = 34.0  // height of a compressed idle stretch
	svgLabelH    = 12.5  // vertical room a label needs
	svgMaxText   = 16    // message text is shortened to this many runes
	svgMinWidth  = 980.0
	svgIntroH    = 17.0  // line height under the title
	svgContext   = 30    // events drawn before and after a highlighted story
	svgMinCol    = 86.0  // narrowest column
	svgMaxCol    = 190.0 // widest column
	svgLineOff   = 40.0  // the process line's offset in a wide column
)

// svgCategory is what a message carries, which sets its colour.
type svgCategory int

const (
	svgCatOther svgCategory = iota
	svgCatPost
	svgCatPeer
	svgCatDeliver
)

func svgCategoryOf(method string) svgCategory {
	switch method {
	case chatapi.ObjectName + ".Post":
		return svgCatPost
	case chatapi.PeerObjectName + ".Forward", chatapi.PeerObjectName + ".Fetch":
		return svgCatPeer
	case chatapi.CallbackObjectName + ".Deliver":
		return svgCatDeliver
	}
	return svgCatOther
}

func (c svgCategory) colour() string {
	return [...]string{svgGrey, svgBlue, svgPurple, svgGreen}[c]
}

func (c svgCategory) name() string {
	return [...]string{"other", "post", "peer", "deliver"}[c]
}

// svgDiagram is the laid-out picture.
type svgDiagram struct {
	ev     []Event
	opt    SVGOptions
	nodes  []string
	col    map[string]int
	roles  map[string]string
	legs   []svgLegView
	hl     *svgHighlight
	lo, hi int // window of events drawn, hi exclusive

	// time scale
	times    []time.Duration // distinct event times in the window
	ys       []float64       // their y
	broken   []bool          // broken[i]: the gap after times[i] is compressed
	pxPerNs  float64
	delay    time.Duration // median network delay in the window
	capGap   time.Duration // longer idle gaps are compressed
	top, bot float64       // y of the window's start and end

	// geometry
	width, height float64
	lineX         []float64 // each column's process line
	right         float64   // right edge of the columns
	headerH       float64
	intro         []string // the lines under the title
	panelY        float64  // the explanation box, under the legend
	panelW        float64
	legendRows    [][]svgLegendItem
	labels        []*svgLabel
}

// svgLegView is a message to draw: leg plus its window status.
type svgLegView struct {
	leg
	fromIn, toIn bool
}

func newSVGDiagram(events []Event, nodes []string, opt SVGOptions) *svgDiagram {
	if opt.MaxEvents <= 0 {
		opt.MaxEvents = DefaultSVGMaxEvents
	}
	d := &svgDiagram{ev: events, opt: opt, col: map[string]int{}, roles: map[string]string{}}
	for _, n := range nodes {
		d.addNode(n)
	}
	for i := range events {
		d.addNode(events[i].Node)
		d.addNode(events[i].Peer)
	}
	d.inferRoles()
	legs := messageLegs(events)
	d.findHighlight(legs)
	d.chooseWindow()
	for _, l := range legs {
		v := svgLegView{leg: l, fromIn: d.in(l.from)}
		if l.to >= 0 {
			v.toIn = d.in(l.to)
		}
		if v.fromIn || v.toIn {
			d.legs = append(d.legs, v)
		}
	}
	d.scaleTime()
	d.layout()
	return d
}

func (d *svgDiagram) addNode(n string) {
	if n == "" {
		return
	}
	if _, ok := d.col[n]; ok {
		return
	}
	d.col[n] = len(d.nodes)
	d.nodes = append(d.nodes, n)
}

// inferRoles names each process's part from what it does in the trace.
func (d *svgDiagram) inferRoles() {
	for i := range d.ev {
		e := &d.ev[i]
		switch e.Kind {
		case "post", "ack", "deliver":
			d.roles[e.Node] = "user"
		case "login":
			d.roles[e.Node] = "user"
			if e.Peer != "" {
				d.roles[e.Peer] = "chat server"
			}
		case "start", "crash", "restart":
			d.roles[e.Node] = "chat server"
		}
	}
	// Who calls what tells the rest (a user whose login failed, say).
	guess := func(n, role string) {
		if _, ok := d.roles[n]; !ok && n != "" {
			d.roles[n] = role
		}
	}
	for i := range d.ev {
		e := &d.ev[i]
		if e.Kind != "send" {
			continue
		}
		object, _, _ := strings.Cut(e.Method, ".")
		switch object {
		case centralapi.ObjectName, chatapi.ObjectName:
			guess(e.Node, "user")
		case centralapi.ClusterObjectName, chatapi.PeerObjectName:
			guess(e.Node, "chat server")
		case chatapi.CallbackObjectName:
			guess(e.Node, "chat server")
			guess(e.Peer, "user")
		}
	}
	for _, n := range d.nodes {
		if n == "central" {
			d.roles[n] = "central server"
		}
	}
}

func (d *svgDiagram) in(i int) bool { return i >= d.lo && i < d.hi }
