package sim

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server/chatapi"
)

// SVGOptions shape the space-time diagram WriteSVG draws.
type SVGOptions struct {
	// Title replaces the default title (e.g. "seed 7, wall clocks, 200ms
	// skew").
	Title string
	// Highlight is the causality counterexample, as in Result.Pair: the
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

// svgHighlight locates the counterexample's events in the trace.
type svgHighlight struct {
	x, y    chatapi.Message
	pair    bool         // both messages given
	events  map[int]bool // events drawn in red
	legs    map[int]bool // messages drawn in red, by sending event
	badges  []svgBadge   // numbered steps of the story
	postX   int          // X's post event, or -1
	ackX    int          // X's ack event, or -1
	saw     int          // Y's author's delivery of X before posting Y, or -1
	postY   int          // Y's post event, or -1
	ackY    int          // Y's ack event, or -1
	recvX   int          // X's Post request arriving at its server, or -1
	recvY   int          // Y's Post request arriving at its server, or -1
	path    []outLeg     // the messages that carried X from recvX to saw, if found
	lo, hi  int          // the range of the story's events, hi exclusive; lo = -1 if none
	outside bool         // some of the story is outside the window drawn
}

// svgBadge is a numbered red marker on one event.
type svgBadge struct {
	n     int
	event int
}

// svgLabel is a text placed beside a dot, pushed down when it would
// overlap the previous label on the same line.
type svgLabel struct {
	col        int
	want       float64 // the dot's y
	dotX       float64
	parts      []svgSpan
	highlight  bool
	placedY    float64
	eventIndex int
}

// svgSpan is a run of label text in one style.
type svgSpan struct {
	text, colour string
	bold         bool
}

func (l *svgLabel) runes() int {
	n := 0
	for _, p := range l.parts {
		n += utf8.RuneCountInString(p.text)
	}
	return n
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

// svgLegView is a message to draw: outLeg plus its window status.
type svgLegView struct {
	outLeg
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
	legs := outMessageLegs(events)
	d.findHighlight(legs)
	d.chooseWindow()
	for _, l := range legs {
		v := svgLegView{outLeg: l, fromIn: d.in(l.from)}
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

// findHighlight locates the highlighted messages' events.
func (d *svgDiagram) findHighlight(legs []outLeg) {
	if len(d.opt.Highlight) == 0 {
		return
	}
	h := &svgHighlight{events: map[int]bool{}, legs: map[int]bool{}, postX: -1, ackX: -1, saw: -1, postY: -1, ackY: -1,
		recvX: -1, recvY: -1, lo: -1}
	h.x = d.opt.Highlight[0]
	if len(d.opt.Highlight) >= 2 {
		h.y, h.pair = d.opt.Highlight[1], true
	}
	recvOf := map[int]int{}
	for _, l := range legs {
		if l.to >= 0 && !l.reply {
			recvOf[l.from] = l.to
		}
	}
	mark := func(m chatapi.Message) (post, ack, recv int) {
		post, ack, recv = -1, -1, -1
		for i := range d.ev {
			e := &d.ev[i]
			if e.Kind == "ack" && e.Node == m.From && e.ID == m.ID {
				ack = i
				break
			}
		}
		for i := range d.ev {
			e := &d.ev[i]
			if e.Kind == "deliver" && e.ID == m.ID && e.From == m.From {
				h.events[i] = true
			}
		}
		if ack < 0 {
			return
		}
		h.events[ack] = true
		for i := ack - 1; i >= 0; i-- {
			e := &d.ev[i]
			if e.Kind == "post" && e.Node == m.From && e.Room == m.Room && e.Text == m.Text {
				post = i
				break
			}
		}
		if post < 0 {
			return
		}
		h.events[post] = true
		// The post's request and reply.
		for i := post + 1; i < ack; i++ {
			e := &d.ev[i]
			if e.Kind == "send" && e.Node == m.From && svgCategoryOf(e.Method) == svgCatPost {
				h.legs[i] = true
				if r, ok := recvOf[i]; ok {
					recv = r
				}
				for _, l := range legs {
					if l.reply && d.ev[l.from].Call == e.Call {
						h.legs[l.from] = true
					}
				}
				break
			}
		}
		return
	}
	h.postX, h.ackX, h.recvX = mark(h.x)
	if h.pair {
		h.postY, h.ackY, h.recvY = mark(h.y)
		if h.postY >= 0 {
			for i := h.postY - 1; i >= 0; i-- {
				e := &d.ev[i]
				if e.Kind == "deliver" && e.Node == h.y.From && e.ID == h.x.ID && e.From == h.x.From {
					h.saw = i
					break
				}
			}
		}
		if h.saw >= 0 && h.recvX >= 0 {
			h.path = d.tracePath(legs, h.recvX, h.saw)
			for _, l := range h.path {
				h.legs[l.from] = true
			}
		}
		for n, i := range []int{h.ackX, h.saw, h.postY, h.ackY} {
			if i >= 0 {
				h.badges = append(h.badges, svgBadge{n: n + 1, event: i})
			}
		}
	}
	// The story: from X's post to Y's ack; failing those, whatever was
	// found of the messages.
	span := func(is []int) {
		for _, i := range is {
			if i < 0 {
				continue
			}
			if h.lo < 0 || i < h.lo {
				h.lo = i
			}
			h.hi = max(h.hi, i+1)
		}
	}
	span([]int{h.postX, h.ackX, h.saw, h.postY, h.ackY})
	if h.lo < 0 {
		for i := range d.ev {
			if h.events[i] {
				span([]int{i})
			}
		}
	}
	d.hl = h
}

// tracePath finds the messages that carried a message from event from (X's
// Post arriving at its server) to event to (its delivery to a user): going
// back from to, each hop is the message whose arrival started the task
// that sent the next one — the receive on the same node at the same
// virtual time, since a task runs at one instant. It returns nil unless
// the chain ends exactly at from, so a wrong guess draws nothing.
func (d *svgDiagram) tracePath(legs []outLeg, from, to int) []outLeg {
	into := map[int]outLeg{} // receiving event -> message
	for _, l := range legs {
		if l.to >= 0 {
			into[l.to] = l
		}
	}
	// arrival finds the message whose receipt on node at the time of
	// event i, no later than i, started i's task; ok reports whether the
	// receipt is from itself.
	arrival := func(i int) (l outLeg, j int, ok bool) {
		e := &d.ev[i]
		for j = i; j >= 0 && d.ev[j].T == e.T; j-- {
			if d.ev[j].Node != e.Node {
				continue
			}
			if j == from {
				return outLeg{}, j, true
			}
			if l, found := into[j]; found && (d.ev[j].Kind == "recv" || d.ev[j].Kind == "return") {
				return l, j, false
			}
		}
		return outLeg{}, -1, false
	}
	var path []outLeg
	cur := to
	for hop := 0; hop < 8; hop++ {
		l, j, done := arrival(cur)
		if done {
			// path is from the delivery back; put it in sending order.
			for a, b := 0, len(path)-1; a < b; a, b = a+1, b-1 {
				path[a], path[b] = path[b], path[a]
			}
			return path
		}
		if j < 0 {
			return nil
		}
		path = append(path, l)
		cur = l.from
	}
	return nil
}

// chooseWindow picks the consecutive events to draw.
func (d *svgDiagram) chooseWindow() {
	n := len(d.ev)
	limit := d.opt.MaxEvents
	lo, hi := 0, n
	auto := d.opt.From == 0 && d.opt.To == 0
	if !auto {
		lo = sort.Search(n, func(i int) bool { return d.ev[i].T >= d.opt.From })
		if d.opt.To > 0 {
			hi = sort.Search(n, func(i int) bool { return d.ev[i].T > d.opt.To })
		}
	}
	focusLo, focusHi := -1, -1
	switch {
	case auto && d.hl != nil && d.hl.lo >= 0:
		// The story and a little context, not hundreds of events: a
		// busy run is unreadable at that. The deliveries of X and Y
		// that follow are included while the window stays small.
		focusLo, focusHi = d.hl.lo, d.hl.hi
		lo, hi = max(0, focusLo-svgContext), focusHi
		for i := focusHi; i < n && i+1+svgContext-lo <= limit; i++ {
			if d.hl.events[i] {
				hi = i + 1
			}
		}
		hi = min(n, hi+svgContext)
	case auto:
		// Skip the set-up traffic: start a little before the first post.
		for i := range d.ev {
			if d.ev[i].Kind == "post" {
				lo = i - min(i, limit/8)
				break
			}
		}
	}
	if hi-lo > limit {
		switch {
		case focusLo >= 0 && focusHi-focusLo >= limit:
			lo, hi = focusLo, focusHi // the whole story, even if longer
		case focusLo >= 0:
			lo = max(0, min(hi-limit, focusLo-(limit-(focusHi-focusLo))/2))
			hi = lo + limit
		default:
			hi = lo + limit
		}
	}
	d.lo, d.hi = lo, hi
	if d.hl != nil && d.hl.lo >= 0 && (d.hl.lo < lo || d.hl.hi > hi) {
		d.hl.outside = true
	}
}

// scaleTime maps virtual time to y: linear within busy stretches,
// compressing idle gaps.
func (d *svgDiagram) scaleTime() {
	var delays []time.Duration
	for _, l := range d.legs {
		if l.to >= 0 && l.fromIn && l.toIn {
			delays = append(delays, d.ev[l.to].T-d.ev[l.from].T)
		}
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	d.delay = time.Millisecond
	if len(delays) > 0 && delays[len(delays)/2] > 0 {
		d.delay = delays[len(delays)/2]
	}
	d.capGap = 5 * d.delay
	for i := d.lo; i < d.hi; i++ {
		t := d.ev[i].T
		if len(d.times) == 0 || d.times[len(d.times)-1] != t {
			d.times = append(d.times, t)
		}
	}
	var linear time.Duration
	for i := 1; i < len(d.times); i++ {
		if g := d.times[i] - d.times[i-1]; g <= d.capGap {
			linear += g
		}
	}
	// About 1500 px for the busy time, but a typical delay gets at
	// least 40 px and at most 90 px, so arrows are neither flat nor huge.
	lo, hi := 40/float64(d.delay), 90/float64(d.delay)
	d.pxPerNs = hi
	if linear > 0 {
		d.pxPerNs = math.Min(hi, math.Max(lo, 1500/float64(linear)))
	}
}

// layout places everything but the messages, which follow from the
// scale.
func (d *svgDiagram) layout() {
	// Each column is as wide as its longest label needs: the process
	// line sits near its left edge (room for a badge) and the labels
	// run to its right.
	d.collectLabels()
	runes := make([]int, len(d.nodes))
	for _, l := range d.labels {
		runes[l.col] = max(runes[l.col], l.runes())
	}
	left := svgAxisW
	d.lineX = make([]float64, len(d.nodes))
	for i := range d.nodes {
		w := svgMinCol
		if runes[i] > 0 {
			w = math.Min(svgMaxCol, math.Max(svgMinCol, svgLineOff+9+float64(runes[i])*svgLabelSize*0.52+10))
		}
		d.lineX[i] = left + math.Min(w/2, svgLineOff)
		left += w
	}
	d.right = left
	d.width = math.Max(svgMinWidth, d.right+20)
	d.legendRows = svgLegendLayout(d.legendItems(), d.width-40)
	d.intro = d.introLines()
	d.headerH = 50 + svgIntroH*float64(len(d.intro)) + 8 + float64(len(d.legendRows))*22 + 4
	if d.hl != nil {
		d.panelW = d.width - 40
		d.panelY = d.headerH
		d.headerH += d.panelHeight() + 14
	}
	d.top = d.headerH + 58 // column heads, then a margin
	y := d.top
	d.ys = make([]float64, len(d.times))
	d.broken = make([]bool, len(d.times))
	for i := range d.times {
		if i > 0 {
			g := d.times[i] - d.times[i-1]
			if g > d.capGap {
				d.broken[i-1] = true
				y += svgBreakH
			} else {
				y += float64(g) * d.pxPerNs
			}
		}
		d.ys[i] = y
	}
	d.bot = y
	for _, l := range d.labels {
		l.want = d.yOf(d.ev[l.eventIndex].T)
	}
	d.placeLabels()
	for _, l := range d.labels {
		d.bot = math.Max(d.bot, l.placedY)
	}
	d.bot += 24
	d.height = d.bot + 40
}

// yOf maps a virtual time to y; times outside the window map to just
// beyond its edges.
func (d *svgDiagram) yOf(t time.Duration) float64 {
	if len(d.times) == 0 {
		return d.top
	}
	if t < d.times[0] {
		return d.top - 14
	}
	if t > d.times[len(d.times)-1] {
		return d.ys[len(d.ys)-1] + 14
	}
	i := sort.Search(len(d.times), func(i int) bool { return d.times[i] >= t })
	if d.times[i] == t {
		return d.ys[i]
	}
	a, b := d.times[i-1], d.times[i]
	return d.ys[i-1] + (d.ys[i]-d.ys[i-1])*float64(t-a)/float64(b-a)
}

// yEvent is the y of event i, clamped to the window's edges.
func (d *svgDiagram) yEvent(i int) float64 {
	switch {
	case i < d.lo:
		return d.top - 14
	case i >= d.hi:
		return d.bot - 10
	}
	return d.yOf(d.ev[i].T)
}

func (d *svgDiagram) x(node string) float64 {
	return d.lineX[d.col[node]]
}

// collectLabels makes a label for each labelled local event in the window.
func (d *svgDiagram) collectLabels() {
	for i := d.lo; i < d.hi; i++ {
		e := &d.ev[i]
		if e.Node == "" {
			continue
		}
		hl := d.hl != nil && d.hl.events[i]
		textCol := svgDark
		stampCol := "#666666"
		if hl {
			textCol, stampCol = svgRed, svgRed
		}
		var parts []svgSpan
		switch e.Kind {
		case "post":
			parts = []svgSpan{{text: "post ", colour: stampCol}, {text: svgShort(e.Text), colour: textCol, bold: hl}}
		case "ack":
			// The post's label just above names the message.
			parts = []svgSpan{{text: "ack ", colour: stampCol}}
			if e.Stamp != nil {
				parts = append(parts, svgSpan{text: outStamp(*e.Stamp), colour: textCol, bold: hl})
			}
		case "deliver":
			parts = []svgSpan{{text: svgShort(e.Text) + " ", colour: textCol, bold: hl}}
			if e.Stamp != nil {
				parts = append(parts, svgSpan{text: outStamp(*e.Stamp), colour: stampCol})
			}
		case "crash":
			parts = []svgSpan{{text: "CRASH", colour: svgRed, bold: true}}
		case "restart":
			parts = []svgSpan{{text: "restart", colour: svgGreen, bold: true}}
		case "start":
			parts = []svgSpan{{text: "start", colour: svgDark}}
		case "login":
			parts = []svgSpan{{text: "logged in on " + e.Peer, colour: svgDark}}
		case "timeout":
			parts = []svgSpan{{text: "timeout " + svgMethodShort(e.Method), colour: svgOrange, bold: true}}
		case "refused":
			parts = []svgSpan{{text: e.Peer + " down: refused", colour: svgOrange, bold: true}}
		case "error":
			parts = []svgSpan{{text: "error: " + svgShortN(e.Text, 18), colour: svgRed}}
		case "clockstep":
			parts = []svgSpan{{text: "clock step " + e.Text, colour: svgPurple, bold: true}}
		default:
			continue
		}
		d.labels = append(d.labels, &svgLabel{col: d.col[e.Node], parts: parts, highlight: hl, eventIndex: i})
	}
}

// placeLabels stacks labels per process line so that none overlaps the
// one above it.
func (d *svgDiagram) placeLabels() {
	next := map[int]float64{}
	for _, l := range d.labels { // already in time order
		l.dotX = d.lineX[l.col]
		y := l.want
		if n, ok := next[l.col]; ok && y < n {
			y = n
		}
		l.placedY = y
		next[l.col] = y + svgLabelH
	}
}

func svgShort(s string) string { return svgShortN(s, svgMaxText) }

func svgShortN(s string, n int) string {
	s = outOneLine(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func svgMethodShort(m string) string {
	if i := strings.LastIndexByte(m, '.'); i >= 0 {
		return m[i+1:]
	}
	return m
}

// svgEsc escapes s for XML text and attribute values.
func svgEsc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// svgLegendItem is one entry of the legend: a sample drawing and a text.
type svgLegendItem struct {
	draw    func(w *bufio.Writer, x, y float64)
	sampleW float64 // room the drawing takes (default 40)
	text    string
	x, w    float64
}

func svgLegendLayout(items []svgLegendItem, width float64) [][]svgLegendItem {
	var rows [][]svgLegendItem
	var row []svgLegendItem
	x := 0.0
	for _, it := range items {
		if it.sampleW == 0 {
			it.sampleW = 40
		}
		it.w = it.sampleW + float64(utf8.RuneCountInString(it.text))*11*0.46 + 20
		if x+it.w > width && len(row) > 0 {
			rows = append(rows, row)
			row, x = nil, 0
		}
		it.x = x
		x += it.w
		row = append(row, it)
	}
	if len(row) > 0 {
		rows = append(rows, row)
	}
	return rows
}

func (d *svgDiagram) legendItems() []svgLegendItem {
	arrow := func(c svgCategory, dashed bool) func(w *bufio.Writer, x, y float64) {
		return func(w *bufio.Writer, x, y float64) {
			dash := ""
			if dashed {
				dash = ` stroke-dasharray="5 3"`
			}
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.6"%s marker-end="url(#ah-%s)"/>`+"\n",
				x, y-5, x+32, y+5, c.colour(), dash, c.name())
		}
	}
	items := []svgLegendItem{
		{draw: arrow(svgCatPost, false), text: "Post: user → its chat server"},
		{draw: arrow(svgCatPeer, false), text: "Forward/Fetch: server → server"},
		{draw: arrow(svgCatDeliver, false), text: "Deliver: server → user (callback)"},
		{draw: arrow(svgCatOther, false), text: "other calls (central, login, ping, sync)"},
		{draw: arrow(svgCatDeliver, true), text: "dashed: the reply to a call"},
		{draw: func(w *bufio.Writer, x, y float64) {
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.6"/>`+"\n", x, y-5, x+16, y+1, svgGrey)
			svgCross(w, x+18, y+2, svgRed)
		}, text: "lost by the network"},
		{draw: func(w *bufio.Writer, x, y float64) {
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.6" stroke-dasharray="2 2"/>`+"\n", x, y-5, x+16, y+1, svgGrey)
			svgCross(w, x+18, y+2, svgGrey)
		}, text: "never received (peer down or caller gone)"},
		{draw: func(w *bufio.Writer, x, y float64) {
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="4.5" fill="white" stroke="%s" stroke-width="1.8"/>`+"\n", x+16, y, svgBlue)
		}, text: "post: the user sends a message"},
		{draw: func(w *bufio.Writer, x, y float64) {
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="4.5" fill="%s"/>`+"\n", x+16, y, svgBlue)
		}, text: "ack: stored and stamped"},
		{draw: func(w *bufio.Writer, x, y float64) {
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", x+16, y, svgGreen)
		}, text: "deliver: the user's view gains it"},
		{draw: func(w *bufio.Writer, x, y float64) {
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/><text x="%.1f" y="%.1f" font-size="10" fill="%s">u02#5 <tspan fill="#666666">4.2705/s2/1</tspan></text>`+"\n",
				x+4, y, svgGreen, x+12, y+3.5, svgDark)
		}, sampleW: 112, text: "message text and stamp: the first server's clock (s) / that server / its seq"},
		{draw: func(w *bufio.Writer, x, y float64) {
			fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="14" height="6" fill="%s"/><rect x="%.1f" y="%.1f" width="14" height="6" fill="%s"/>`+"\n",
				x, y-3, svgRed, x+18, y-3, svgGreen)
		}, text: "crash, restart"},
		{draw: func(w *bufio.Writer, x, y float64) {
			fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="34" height="12" fill="#ececec"/><text x="%.1f" y="%.1f" font-size="10" fill="#777777">≈</text>`+"\n",
				x, y-6, x+13, y+3.5)
		}, text: "idle time, compressed"},
	}
	if d.hl != nil {
		items = append(items, svgLegendItem{draw: func(w *bufio.Writer, x, y float64) {
			svgBadgeAt(w, x+8, y, 1, "legend")
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="7" fill="none" stroke="%s" stroke-width="2"/>`+"\n", x+26, y, svgRed)
		}, text: "the counterexample (its steps are explained above)"})
	}
	return items
}

func svgCross(w *bufio.Writer, x, y float64, colour string) {
	fmt.Fprintf(w, `<path d="M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f" stroke="%s" stroke-width="2.2" stroke-linecap="round"/>`+"\n",
		x-4, y-4, x+4, y+4, x-4, y+4, x+4, y-4, colour)
}

// svgBadgeAt draws badge n; class "badge" marks those of the story (not
// the legend's sample).
func svgBadgeAt(w *bufio.Writer, x, y float64, n int, class string) {
	fmt.Fprintf(w, `<g class="%s"><circle cx="%.1f" cy="%.1f" r="7.5" fill="%s"/><text x="%.1f" y="%.1f" font-size="10" font-weight="bold" fill="white" text-anchor="middle">%d</text></g>`+"\n",
		class, x, y, svgRed, x, y+3.5, n)
}

// render writes the SVG document.
func (d *svgDiagram) render(w *bufio.Writer) {
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="%s">`+"\n",
		d.width, d.height, d.width, d.height, svgFont)
	d.renderDefs(w)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	d.renderHeader(w)
	if len(d.times) == 0 {
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="14" fill="%s">No events to draw in this window.</text>`+"\n", svgAxisW, d.top+20, svgDark)
		d.renderColumns(w)
		fmt.Fprintln(w, `</svg>`)
		return
	}
	d.renderAxis(w)
	d.renderColumns(w)
	d.renderBreaks(w)
	d.renderNetworkEvents(w)
	d.renderMessages(w)
	d.renderDots(w)
	d.renderLabels(w)
	d.renderHighlight(w)
	fmt.Fprintln(w, `</svg>`)
}

func (d *svgDiagram) renderDefs(w *bufio.Writer) {
	fmt.Fprintln(w, `<defs>`)
	for _, c := range []svgCategory{svgCatOther, svgCatPost, svgCatPeer, svgCatDeliver} {
		svgMarker(w, "ah-"+c.name(), c.colour())
	}
	svgMarker(w, "ah-red", svgRed)
	fmt.Fprintln(w, `</defs>`)
}

func svgMarker(w *bufio.Writer, id, colour string) {
	fmt.Fprintf(w, `<marker id="%s" viewBox="0 0 10 10" refX="9.5" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto"><path d="M0 0.5L10 5L0 9.5z" fill="%s"/></marker>`+"\n", id, colour)
}

func (d *svgDiagram) renderHeader(w *bufio.Writer) {
	title := d.opt.Title
	if title == "" {
		title = "distchat simulation — space-time diagram"
	}
	fmt.Fprintf(w, `<text x="20" y="30" font-size="20" font-weight="bold" fill="%s">%s</text>`+"\n", svgDark, svgEsc(title))
	y := 50.0
	for _, line := range d.intro {
		fmt.Fprintf(w, `<text x="20" y="%.1f" font-size="12" fill="#444444">%s</text>`+"\n", y, svgEsc(line))
		y += svgIntroH
	}
	y += 8
	for _, row := range d.legendRows {
		for _, it := range row {
			x := 24 + it.x
			it.draw(w, x, y)
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="11" fill="%s">%s</text>`+"\n", x+it.sampleW, y+4, svgDark, svgEsc(it.text))
		}
		y += 22
	}
	fmt.Fprintf(w, `<line x1="16" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#dddddd"/>`+"\n", d.headerH-6, d.width-16, d.headerH-6)
}

// introLines says how to read the picture and what part of the trace it
// shows, wrapped to the picture's width.
func (d *svgDiagram) introLines() []string {
	n := len(d.ev)
	paras := []string{"Each vertical line is one process; virtual time runs downwards; each arrow is one message, from the event that sent it to the event that received it."}
	if len(d.times) > 0 {
		note := fmt.Sprintf("Showing events %d–%d of %d: t = %s … %s", d.lo+1, d.hi, n, svgSecs(d.times[0]), svgSecs(d.times[len(d.times)-1]))
		if d.lo > 0 || d.hi < n {
			note += fmt.Sprintf(", a window of a trace that runs to t = %s (the trace and the ShiViz log hold every event).", svgSecs(d.ev[n-1].T))
		} else {
			note += "."
		}
		paras = append(paras, note, fmt.Sprintf("Typical network delay here: %s. Stretches of more than %s without any event are compressed (grey bands).",
			svgDur(d.delay), svgDur(d.capGap)))
	} else {
		paras = append(paras, fmt.Sprintf("No events in the window (%d in the trace).", n))
	}
	var lines []string
	for _, p := range paras {
		lines = append(lines, svgWrap(p, int((d.width-40)/(12*0.5)))...)
	}
	return lines
}

// renderAxis draws the time axis with ticks and faint grid lines.
func (d *svgDiagram) renderAxis(w *bufio.Writer) {
	ax := svgAxisW - 12
	right := d.right
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="11" font-weight="bold" fill="%s" text-anchor="end">virtual time ↓</text>`+"\n", ax, d.top-26, svgDark)
	// Ticks about every 70 px, at round values.
	step := svgNiceStep(time.Duration(70 / d.pxPerNs))
	decimals := 0
	for s := time.Second; s > step && decimals < 6; s /= 10 {
		decimals++
	}
	start := 0
	for i := range d.times {
		if i == len(d.times)-1 || d.broken[i] {
			a, b := d.times[start], d.times[i]
			t := (a + step - 1) / step * step
			for ; t <= b; t += step {
				y := d.yOf(t)
				fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#f0f0f0"/>`+"\n", svgAxisW, y, right, y)
				fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", ax-5, y, ax, y, svgDark)
				fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="10" fill="%s" text-anchor="end">%.*f s</text>`+"\n", ax-8, y+3.5, svgDark, decimals, t.Seconds())
			}
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", ax, d.ys[start], ax, d.ys[i], svgDark)
			start = i + 1
		}
	}
}

// svgNiceStep rounds d up to 1, 2 or 5 times a power of ten.
func svgNiceStep(d time.Duration) time.Duration {
	if d < 1 {
		d = 1
	}
	p := time.Duration(1)
	for p*10 <= d {
		p *= 10
	}
	for _, m := range []time.Duration{1, 2, 5, 10} {
		if m*p >= d {
			return m * p
		}
	}
	return 10 * p
}

// renderColumns draws the process lines, their names, and down time.
func (d *svgDiagram) renderColumns(w *bufio.Writer) {
	headY := d.headerH + 4
	for _, n := range d.nodes {
		x := d.x(n)
		role := d.roles[n]
		fill := "#eeeeee"
		switch role {
		case "chat server":
			fill = "#dbe9f6"
		case "user":
			fill = "#e3f4e1"
		}
		fmt.Fprintf(w, `<g class="process" data-node="%s">`+"\n", svgEsc(n))
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="36" rx="6" fill="%s" stroke="#bbbbbb"/>`+"\n", x-39, headY, 78.0, fill)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="14" font-weight="bold" fill="%s" text-anchor="middle">%s</text>`+"\n", x, headY+16, svgDark, svgEsc(n))
		if role != "" {
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="10" fill="#555555" text-anchor="middle">%s</text>`+"\n", x, headY+30, role)
		}
		fmt.Fprintf(w, `<line class="proc" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555555" stroke-width="1.5"/>`+"\n", x, headY+36, x, d.bot)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="12" font-weight="bold" fill="#555555" text-anchor="middle">%s</text>`+"\n", x, d.bot+16, svgEsc(n))
		fmt.Fprintln(w, `</g>`)
	}
	// Down time: from a crash to the restart (or the end of the window).
	down := map[string]int{}
	for i := 0; i < d.hi; i++ {
		e := &d.ev[i]
		switch e.Kind {
		case "crash":
			down[e.Node] = i
		case "restart":
			if c, ok := down[e.Node]; ok {
				delete(down, e.Node)
				if i >= d.lo {
					d.renderDown(w, e.Node, c, i)
				}
			}
		}
	}
	for _, n := range d.nodes {
		if c, ok := down[n]; ok {
			d.renderDown(w, n, c, d.hi)
		}
	}
}

func (d *svgDiagram) renderDown(w *bufio.Writer, node string, from, to int) {
	x := d.x(node)
	y1, y2 := d.yEvent(from), d.yEvent(to)
	if to >= d.hi {
		y2 = d.bot
	}
	fmt.Fprintf(w, `<line class="down" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="white" stroke-width="3"/>`+"\n", x, y1, x, y2)
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="3 4"><title>%s is down</title></line>`+"\n", x, y1, x, y2, svgRed, svgEsc(node))
}

// renderBreaks draws the compressed idle stretches.
func (d *svgDiagram) renderBreaks(w *bufio.Writer) {
	right := d.right
	for i, b := range d.broken {
		if !b {
			continue
		}
		y1, y2 := d.ys[i], d.ys[i+1]
		gap := d.times[i+1] - d.times[i]
		fmt.Fprintf(w, `<g class="break"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#ececec" opacity="0.85"/>`, svgAxisW-40, y1+5, right-svgAxisW+40, y2-y1-10)
		for _, n := range d.nodes {
			x := d.x(n)
			fmt.Fprintf(w, `<path d="M%.1f %.1fl6 -4M%.1f %.1fl6 -4" stroke="#888888" stroke-width="1.2"/>`, x-3, (y1+y2)/2, x-3, (y1+y2)/2+5)
		}
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="10" font-style="italic" fill="#666666" text-anchor="end">≈ %s idle</text></g>`+"\n",
			svgAxisW-12, (y1+y2)/2+3.5, svgDur(gap))
	}
}

// renderNetworkEvents draws partitions and heals across the picture.
func (d *svgDiagram) renderNetworkEvents(w *bufio.Writer) {
	right := d.right
	for i := d.lo; i < d.hi; i++ {
		e := &d.ev[i]
		if e.Node != "" {
			continue
		}
		var colour, text string
		switch e.Kind {
		case "partition":
			colour, text = svgOrange, "network partition "+e.Text
		case "heal":
			colour, text = svgGreen, "partition healed"
		default:
			colour, text = svgDark, e.Kind+" "+e.Text
		}
		y := d.yOf(e.T)
		fmt.Fprintf(w, `<g class="net"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="8 4"/>`, svgAxisW, y, right, y, colour)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="11" font-weight="bold" fill="%s" stroke="white" stroke-width="3" paint-order="stroke">%s</text></g>`+"\n",
			svgAxisW+4, y-4, colour, svgEsc(text))
	}
}

// renderMessages draws one arrow per message.
func (d *svgDiagram) renderMessages(w *bufio.Writer) {
	// Red ones last, on top.
	for pass := 0; pass < 2; pass++ {
		for _, l := range d.legs {
			hl := d.hl != nil && d.hl.legs[l.from]
			if hl != (pass == 1) {
				continue
			}
			d.renderLeg(w, l, hl)
		}
	}
}

func (d *svgDiagram) renderLeg(w *bufio.Writer, l svgLegView, hl bool) {
	s := &d.ev[l.from]
	cat := svgCategoryOf(s.Method)
	colour, marker := cat.colour(), "ah-"+cat.name()
	width := 1.5
	if cat == svgCatOther {
		width = 1.1
	}
	if hl {
		colour, marker, width = svgRed, "ah-red", 2.4
	}
	dash := ""
	if l.reply {
		// Replies matter less than requests (most just say "done"):
		// dashed and lighter.
		dash = ` stroke-dasharray="5 3"`
		width *= 0.8
		if !hl {
			dash += ` stroke-opacity="0.55"`
		}
	}
	kind := "request"
	if l.reply {
		kind = "reply"
	}
	x1, y1 := d.x(s.Node), d.yEvent(l.from)
	x2 := d.x(s.Peer)
	var title string
	if l.to >= 0 {
		r := &d.ev[l.to]
		title = fmt.Sprintf("%s %s, %s → %s, call %d: sent t=%s, received t=%s (%s)", s.Method, kind, s.Node, s.Peer, s.Call,
			svgSecs(s.T), svgSecs(r.T), svgDur(r.T-s.T))
		if !l.fromIn || !l.toIn {
			dash = ` stroke-dasharray="2 3"`
		}
		y2 := d.yEvent(l.to)
		fmt.Fprintf(w, `<line class="msg %s %s" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"%s marker-end="url(#%s)"><title>%s</title></line>`+"\n",
			kind, cat.name(), x1, y1, x2, y2, colour, width, dash, marker, svgEsc(title))
		return
	}
	// Not received: a short stub towards the receiver, ending in a cross.
	frac := 0.4
	x2 = x1 + (x2-x1)*frac
	y2 := y1 + float64(d.delay)*d.pxPerNs*frac
	cross := svgGrey
	why := "never received: the receiver was down, the caller had given up or crashed, or the run ended"
	stubDash := ` stroke-dasharray="2 2"`
	if l.drop >= 0 {
		cross, why, stubDash = svgRed, "lost by the network", ""
	}
	title = fmt.Sprintf("%s %s, %s → %s, call %d: sent t=%s, %s", s.Method, kind, s.Node, s.Peer, s.Call, svgSecs(s.T), why)
	fmt.Fprintf(w, `<g class="msg lost %s"><title>%s</title><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"%s/>`,
		kind, svgEsc(title), x1, y1, x2, y2, colour, width, stubDash)
	svgCross(w, x2, y2, cross)
	fmt.Fprintln(w, `</g>`)
}

// renderDots draws the local events.
func (d *svgDiagram) renderDots(w *bufio.Writer) {
	for i := d.lo; i < d.hi; i++ {
		e := &d.ev[i]
		if e.Node == "" {
			continue
		}
		x, y := d.x(e.Node), d.yOf(e.T)
		hl := d.hl != nil && d.hl.events[i]
		title := svgEsc(outDescribe(e))
		switch e.Kind {
		case "post":
			fmt.Fprintf(w, `<circle class="ev post" cx="%.1f" cy="%.1f" r="4.5" fill="white" stroke="%s" stroke-width="1.8"><title>%s</title></circle>`+"\n", x, y, svgBlue, title)
		case "ack":
			fmt.Fprintf(w, `<circle class="ev ack" cx="%.1f" cy="%.1f" r="4.5" fill="%s"><title>%s</title></circle>`+"\n", x, y, svgBlue, title)
		case "deliver":
			fmt.Fprintf(w, `<circle class="ev deliver" cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s</title></circle>`+"\n", x, y, svgGreen, title)
		case "crash":
			fmt.Fprintf(w, `<rect class="ev crash" x="%.1f" y="%.1f" width="36" height="7" fill="%s"><title>%s</title></rect>`+"\n", x-18, y-3.5, svgRed, title)
		case "restart":
			fmt.Fprintf(w, `<rect class="ev restart" x="%.1f" y="%.1f" width="36" height="7" fill="%s"><title>%s</title></rect>`+"\n", x-18, y-3.5, svgGreen, title)
		case "start", "login":
			fmt.Fprintf(w, `<rect class="ev %s" x="%.1f" y="%.1f" width="7" height="7" fill="%s"><title>%s</title></rect>`+"\n", e.Kind, x-3.5, y-3.5, svgDark, title)
		case "timeout", "refused", "error":
			fmt.Fprintf(w, `<path class="ev %s" d="M%.1f %.1fl5 9h-10z" fill="%s"><title>%s</title></path>`+"\n", e.Kind, x, y-5, svgOrange, title)
		case "clockstep":
			fmt.Fprintf(w, `<rect class="ev clockstep" x="%.1f" y="%.1f" width="9" height="9" fill="%s" transform="rotate(45 %.1f %.1f)"><title>%s</title></rect>`+"\n", x-4.5, y-4.5, svgPurple, x, y, title)
		default:
			continue
		}
		if hl {
			fmt.Fprintf(w, `<circle class="highlight" cx="%.1f" cy="%.1f" r="8" fill="none" stroke="%s" stroke-width="2.2"/>`+"\n", x, y, svgRed)
		}
	}
}

// renderLabels writes the labels beside their dots, with a leader line
// when a label had to move down.
func (d *svgDiagram) renderLabels(w *bufio.Writer) {
	for _, l := range d.labels {
		x := l.dotX + 9
		if k := d.ev[l.eventIndex].Kind; k == "crash" || k == "restart" {
			x = l.dotX + 22 // after the bar
		}
		if l.placedY-l.want > 3 {
			fmt.Fprintf(w, `<path d="M%.1f %.1fL%.1f %.1f" stroke="#bbbbbb" stroke-width="0.8" fill="none"/>`+"\n", l.dotX+3, l.want, x-1, l.placedY)
		}
		class := "label"
		if l.highlight {
			class = "label highlight"
		}
		fmt.Fprintf(w, `<text class="%s" x="%.1f" y="%.1f" font-size="%.0f" stroke="white" stroke-width="3" stroke-linejoin="round" paint-order="stroke">`,
			class, x, l.placedY+3.5, svgLabelSize)
		for _, p := range l.parts {
			weight := ""
			if p.bold {
				weight = ` font-weight="bold"`
			}
			fmt.Fprintf(w, `<tspan fill="%s"%s>%s</tspan>`, p.colour, weight, svgEsc(p.text))
		}
		fmt.Fprintln(w, `</text>`)
	}
}

// The explanation panel.

// svgPanelLine is one paragraph of the explanation.
type svgPanelLine struct {
	badge int // 0: none
	text  string
	bold  bool
	size  float64
	color string
}

func (d *svgDiagram) panelText() []svgPanelLine {
	h := d.hl
	if h == nil {
		return nil
	}
	x, y := h.x, h.y
	var out []svgPanelLine
	add := func(badge int, text string) {
		out = append(out, svgPanelLine{badge: badge, text: text, size: 11, color: svgDark})
	}
	if !h.pair {
		out = append(out, svgPanelLine{text: fmt.Sprintf("Highlighted: %q by %s", x.Text, x.From), bold: true, size: 13, color: svgRed})
		add(0, fmt.Sprintf("Stamp %s. Its post, ack and deliveries are drawn in red.", outStamp(x.Stamp)))
		return out
	}
	out = append(out, svgPanelLine{text: "Causality violated", bold: true, size: 15, color: svgRed})
	out = append(out, svgPanelLine{text: fmt.Sprintf("%s saw X, then posted Y — and Y is ordered before X.", y.From), bold: true, size: 12, color: svgDark})
	at := func(i int) string {
		if i < 0 {
			return ""
		}
		return " at t = " + svgSecs(d.ev[i].T)
	}
	add(1, fmt.Sprintf("%s posts X = %q; %s stamps it %s%s.", x.From, x.Text, x.Stamp.Server, outStamp(x.Stamp), at(h.recvX)))
	route := ""
	if len(h.path) > 0 {
		hops := []string{d.ev[h.path[0].from].Node}
		for _, l := range h.path {
			hops = append(hops, d.ev[l.from].Peer)
		}
		route = " via " + strings.Join(hops, " → ") + " (red arrows)"
	}
	add(2, fmt.Sprintf("X reaches %s%s%s: %s has now seen X.", y.From, route, at(h.saw), y.From))
	later := ""
	if h.saw >= 0 && h.postY >= 0 {
		later = svgDur(d.ev[h.postY].T-d.ev[h.saw].T) + " later, "
	}
	add(3, fmt.Sprintf("%s%s posts Y = %q%s, written after reading X.", later, y.From, y.Text, at(h.postY)))
	diff := time.Duration(x.Stamp.Time - y.Stamp.Time)
	add(4, fmt.Sprintf("%s stamps Y %s%s — %s before X's stamp, so every log in room %s lists Y above X.",
		y.Stamp.Server, outStamp(y.Stamp), at(h.recvY), svgDur(diff), y.Room))
	why := "Why: stamps come from the clock of the server that first stores a post."
	offX, okX := d.clockOffset(h.recvX, x.Stamp)
	offY, okY := d.clockOffset(h.recvY, y.Stamp)
	if okX && okY {
		why += fmt.Sprintf(" When stamping, %s's clock read %s and %s's %s against true (virtual) time: %s's is %s behind,",
			x.Stamp.Server, svgSigned(offX), y.Stamp.Server, svgSigned(offY), y.Stamp.Server, svgDur(offX-offY))
	} else {
		why += fmt.Sprintf(" %s's clock is behind %s's", y.Stamp.Server, x.Stamp.Server)
	}
	why += fmt.Sprintf(" more than the network delay (typically %s here), so a post made after seeing X can get a smaller stamp.", svgDur(d.delay))
	out = append(out, svgPanelLine{text: why, size: 11, color: "#444444"})
	out = append(out, svgPanelLine{text: "The fix (hlc mode): a client sends the largest stamp it has seen with each post, and the server stamps the post after it.",
		size: 11, color: "#444444"})
	if h.outside {
		out = append(out, svgPanelLine{text: "Part of this story lies outside the window drawn.", size: 11, color: svgOrange, bold: true})
	}
	return out
}

// clockOffset estimates how far the stamping server's clock was from
// virtual time: the stamp's clock reading minus the virtual time its
// Post request arrived.
func (d *svgDiagram) clockOffset(recv int, st chatapi.Stamp) (time.Duration, bool) {
	if recv < 0 || d.ev[recv].Node != st.Server {
		return 0, false
	}
	return time.Duration(st.Time-Epoch.UnixNano()) - d.ev[recv].T, true
}

// svgWrap breaks text into lines of at most n runes.
func svgWrap(text string, n int) []string {
	var lines []string
	var cur string
	for _, word := range strings.Fields(text) {
		switch {
		case cur == "":
			cur = word
		case utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(word) > n:
			lines = append(lines, cur)
			cur = word
		default:
			cur += " " + word
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

func (d *svgDiagram) panelLines() (lines []svgPanelLine, heights []float64) {
	for _, p := range d.panelText() {
		indent := 0.0
		if p.badge > 0 {
			indent = 22
		}
		chars := int((d.panelW - 40 - indent) / (p.size * 0.52))
		for j, s := range svgWrap(p.text, chars) {
			q := p
			q.text = s
			if j > 0 && p.badge > 0 {
				q.badge = -1 // continuation of a step: indented, no badge
			}
			lines = append(lines, q)
			heights = append(heights, p.size+4)
		}
		heights[len(heights)-1] += 6 // paragraph gap
	}
	return lines, heights
}

func (d *svgDiagram) panelHeight() float64 {
	_, hs := d.panelLines()
	h := 14.0
	for _, x := range hs {
		h += x
	}
	return h
}

// renderHighlight draws the numbered badges and the explanation panel.
func (d *svgDiagram) renderHighlight(w *bufio.Writer) {
	h := d.hl
	if h == nil {
		return
	}
	for _, b := range h.badges {
		if !d.in(b.event) {
			continue
		}
		e := &d.ev[b.event]
		svgBadgeAt(w, d.x(e.Node)-17, d.yOf(e.T), b.n, "badge")
	}
	lines, heights := d.panelLines()
	x0, y0 := 20.0, d.panelY
	fmt.Fprintf(w, `<g class="callout"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="8" fill="#fff5f5" stroke="%s" stroke-width="1.5"/>`+"\n",
		x0, y0, d.panelW, d.panelHeight(), svgRed)
	y := y0 + 20
	for i, l := range lines {
		x := x0 + 12
		if l.badge != 0 {
			if l.badge > 0 {
				svgBadgeAt(w, x+8, y-4, l.badge, "badge")
			}
			x += 22
		}
		weight := ""
		if l.bold {
			weight = ` font-weight="bold"`
		}
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="%.0f" fill="%s"%s>%s</text>`+"\n", x, y, l.size, l.color, weight, svgEsc(l.text))
		y += heights[i]
	}
	fmt.Fprintln(w, `</g>`)
}

// svgSecs formats virtual time in seconds to 0.1 ms.
func svgSecs(d time.Duration) string { return fmt.Sprintf("%.4f s", d.Seconds()) }

// svgDur formats a duration briefly: 3.2 ms, 1.25 s, 420 µs.
func svgDur(d time.Duration) string {
	if d < 0 {
		return "-" + svgDur(-d)
	}
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond || d == 0:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func svgSigned(d time.Duration) string {
	if d < 0 {
		return svgDur(d)
	}
	return "+" + svgDur(d)
}
