package trace

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// svgShort shortens a message text for a label.
func svgShort(s string) string { return svgShortN(s, svgMaxText) }

// svgShortN puts s on one line and cuts it to n runes, ending in "…"
// when cut.
func svgShortN(s string, n int) string {
	s = oneLine(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// svgMethodShort is a method name without its object: "Post" for
// "ChatServer.Post".
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

// svgSigned is svgDur with a sign: +3.2 ms, -1.25 s.
func svgSigned(d time.Duration) string {
	if d < 0 {
		return svgDur(d)
	}
	return "+" + svgDur(d)
}
