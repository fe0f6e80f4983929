package trace

import (
	"bufio"
	"fmt"
	"math"
	"sort"
	"time"
	"unicode/utf8"
)

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
				parts = append(parts, svgSpan{text: stampText(*e.Stamp), colour: textCol, bold: hl})
			}
		case "deliver":
			parts = []svgSpan{{text: svgShort(e.Text) + " ", colour: textCol, bold: hl}}
			if e.Stamp != nil {
				parts = append(parts, svgSpan{text: stampText(*e.Stamp), colour: stampCol})
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
