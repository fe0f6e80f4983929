package servertest

import "errors"

// ErrDiskFull is what a chat server's writes fail with while DiskFull
// holds for it.
var ErrDiskFull = errors.New("servertest: no space left on device")

// DiskFull makes every write of chat server name to its data file fail,
// as on a full disk (full true), or work again (full false). It holds
// across restarts of the server.
func (c *Cluster) DiskFull(name string, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mustServer(name).diskFull = full
}

// HoldWrites makes chat server name's writes to its data file wait,
// before they are synced, until it is called again with hold false: a
// disk that is slow to flush.
func (c *Cluster) HoldWrites(name string, hold bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.mustServer(name)
	switch {
	case hold && s.writeHold == nil:
		s.writeHold = make(chan struct{})
	case !hold && s.writeHold != nil:
		close(s.writeHold)
		s.writeHold = nil
	}
}

// writeFault is chat server name's server.Config.WriteFault.
func (c *Cluster) writeFault(name string) error {
	c.mu.Lock()
	hold := c.servers[name].writeHold
	c.mu.Unlock()
	if hold != nil {
		<-hold
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.servers[name].diskFull {
		return ErrDiskFull
	}
	return nil
}
