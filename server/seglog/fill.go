package seglog

// Filling ahead. An append that grows the file makes its fdatasync write
// the file's new size as well as the data. So the Log keeps the next
// Options.Prealloc bytes of the current segment written with zeros,
// synced, by a goroutine of its own, started after an append when less
// than half of that is left. Appends wait for a fill only if they would
// write where it writes (a burst larger than what is filled), and then
// write past it, growing the file as they did before.

// fill is a zero-filling of bytes from to to of a segment, in flight.
type fill struct {
	from, to int64
	done     chan struct{}
	err      error // set before done is closed
}

// fillAhead starts a fill of the current segment if less than half of
// Options.Prealloc is filled past its end and none is in flight. The
// caller holds wmu.
func (l *Log) fillAhead() {
	if l.opts.NoSync || l.opts.Prealloc <= 0 || l.fill != nil || l.closed {
		return
	}
	if l.ready-l.size >= l.opts.Prealloc/2 {
		return
	}
	from, to := l.ready, min(l.ready+l.opts.Prealloc, l.opts.SegmentSize)
	if to <= from {
		return // the segment is filled to its size
	}
	seg := l.last()
	f := &fill{from: from, to: to, done: make(chan struct{})}
	l.fill = f
	go func() {
		defer close(f.done)
		zeros := make([]byte, min(to-from, 256<<10))
		for off := from; off < to && f.err == nil; off += int64(len(zeros)) {
			_, f.err = seg.f.WriteAt(zeros[:min(int64(len(zeros)), to-off)], off)
		}
		if f.err == nil {
			f.err = fdatasync(seg.f)
		}
	}()
}

// settleFill takes in the result of the fill in flight: at once if it is
// done, else only if wait, after waiting for it. A fill that failed
// leaves only zeros past the end of the log, and is not counted. The
// caller holds wmu.
func (l *Log) settleFill(wait bool) {
	f := l.fill
	if f == nil {
		return
	}
	if wait {
		<-f.done
	} else {
		select {
		case <-f.done:
		default:
			return
		}
	}
	l.fill = nil
	if f.err == nil && f.from <= l.ready {
		l.ready = max(l.ready, f.to)
	}
}
