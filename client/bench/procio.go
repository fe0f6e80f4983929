package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ReadProcIO returns the read and write system calls a process has made,
// from path, its /proc/PID/io on Linux (the syscr and syscw lines: read,
// recvmsg, write, sendmsg and their kin, whether or not they moved a byte;
// fdatasync is neither).
func ReadProcIO(path string) (reads, writes int64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	var seen int
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || key != "syscr" && key != "syscw" {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %s: %w", path, key, err)
		}
		if key == "syscr" {
			reads = n
		} else {
			writes = n
		}
		seen++
	}
	if seen != 2 {
		return 0, 0, fmt.Errorf("%s: no syscr and syscw lines", path)
	}
	return reads, writes, nil
}

// selfSyscalls returns this process's read and write system calls so far,
// if the system tells (Linux's /proc).
func selfSyscalls() (reads, writes int64, ok bool) {
	r, w, err := ReadProcIO("/proc/self/io")
	return r, w, err == nil
}
