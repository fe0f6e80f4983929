// Package trace holds the simulator's event trace and writes it for
// people and tools: as JSON lines (WriteJSON), as a log for the ShiViz
// vector-clock visualiser (WriteShiViz) and as a space-time diagram in
// SVG (WriteSVG). The writers are pure functions of the events, so the
// same run gives byte-identical files.
//
// The simulator (package sim) records the events; this package knows
// nothing of how they were made.
package trace
