package trace

import (
	"bufio"
	"fmt"
	"time"
)

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
		title := svgEsc(describe(e))
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
