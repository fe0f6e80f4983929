package trace

import (
	"bufio"
	"fmt"
	"strings"
	"time"

	"github.com/distchat/distchat/server/chatapi"
)

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
	path    []leg        // the messages that carried X from recvX to saw, if found
	lo, hi  int          // the range of the story's events, hi exclusive; lo = -1 if none
	outside bool         // some of the story is outside the window drawn
}

// svgBadge is a numbered red marker on one event.
type svgBadge struct {
	n     int
	event int
}

// findHighlight locates the highlighted messages' events.
func (d *svgDiagram) findHighlight(legs []leg) {
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
func (d *svgDiagram) tracePath(legs []leg, from, to int) []leg {
	into := map[int]leg{} // receiving event -> message
	for _, l := range legs {
		if l.to >= 0 {
			into[l.to] = l
		}
	}
	// arrival finds the message whose receipt on node at the time of
	// event i, no later than i, started i's task; ok reports whether the
	// receipt is from itself.
	arrival := func(i int) (l leg, j int, ok bool) {
		e := &d.ev[i]
		for j = i; j >= 0 && d.ev[j].T == e.T; j-- {
			if d.ev[j].Node != e.Node {
				continue
			}
			if j == from {
				return leg{}, j, true
			}
			if l, found := into[j]; found && (d.ev[j].Kind == "recv" || d.ev[j].Kind == "return") {
				return l, j, false
			}
		}
		return leg{}, -1, false
	}
	var path []leg
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
		add(0, fmt.Sprintf("Stamp %s. Its post, ack and deliveries are drawn in red.", stampText(x.Stamp)))
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
	add(1, fmt.Sprintf("%s posts X = %q; %s stamps it %s%s.", x.From, x.Text, x.Stamp.Server, stampText(x.Stamp), at(h.recvX)))
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
		y.Stamp.Server, stampText(y.Stamp), at(h.recvY), svgDur(diff), y.Room))
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
