package trace

// The tests that run the simulator live in package trace_test, since
// package sim imports this one; these are the names from inside the
// package they use.
var (
	ParseShiViz = parseShiViz
	CheckShiViz = checkShiViz
	StampText   = stampText
)
