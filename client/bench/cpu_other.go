//go:build !unix

package bench

import "time"

// selfCPU reports that the CPU time of this process is not known here.
func selfCPU() (time.Duration, bool) { return 0, false }
