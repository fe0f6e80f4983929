package seglog

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data, and only the metadata needed to read it
// back (its size), to the disk: cheaper than fsync, which also writes
// the modification time.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
