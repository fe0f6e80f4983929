package client

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/distchat/distchat/server/chatapi"
)

// callbackObject is the remote object a chat server calls back (exported
// as chatapi.CallbackObjectName). Its only remote method is Deliver.
type callbackObject struct{ c *Client }

// Deliver implements chatapi.Callback: it inserts the messages into their
// rooms' views and hands them and the events on; see Client.deliver. The
// strings of args.Messages borrow the request's bytes (the object is
// exported with rmi.BorrowArgs), valid only until Deliver returns: what
// it keeps, and what it hands to Config.OnMessage, are the views' own
// strings (roomSet.deliver).
func (o *callbackObject) Deliver(ctx context.Context, args chatapi.DeliverArgs) error {
	o.c.deliver(args)
	return nil
}

// Voice implements chatapi.Callback: it hands a voice signal to
// Config.OnVoice.
func (o *callbackObject) Voice(ctx context.Context, args chatapi.VoiceDeliverArgs) error {
	c := o.c
	c.cbMu.Lock()
	defer c.cbMu.Unlock()
	c.mu.Lock()
	closed, call := c.closed, c.voiceCalls[args.Room]
	c.mu.Unlock()
	if closed {
		return nil
	}
	if call != nil {
		call.signal(args.Signal)
	}
	if c.cfg.OnVoice != nil {
		c.cfg.OnVoice(args.Room, args.Signal)
	}
	return nil
}

var _ chatapi.Callback = (*callbackObject)(nil)

// deliver handles a delivery from a chat server: the room set (the core,
// in view.go) applies it under the lock, then the client carries out what
// it returned: OnMessage for each message newly shown, OnEvent for each
// event, and the syncs it asks for (a room seen for the first time, a
// resync event, a hole), scheduled on the clock; after a move event, a
// probe of the server shortly after (which fails over when the server
// refuses the ping); a session-ended event stops the client
// (sessionEnded). It makes no remote call.
func (c *Client) deliver(args chatapi.DeliverArgs) {
	c.cbMu.Lock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.cbMu.Unlock()
		return
	}
	d := c.rooms.deliver(c.user, args)
	c.mu.Unlock()
	if c.cfg.OnMessage != nil {
		for _, m := range d.shown {
			c.cfg.OnMessage(m)
		}
	}
	if c.cfg.OnEvent != nil {
		for _, e := range args.Events {
			c.cfg.OnEvent(e)
		}
	}
	c.cbMu.Unlock()
	if slices.ContainsFunc(args.Events, func(e chatapi.Event) bool { return e.Kind == chatapi.EventSessionEnded }) {
		c.sessionEnded(chatapi.ErrSessionEnded)
		return
	}
	for _, r := range d.full {
		c.scheduleSync(r, false)
	}
	for _, r := range d.gaps {
		c.scheduleSync(r, true)
	}
	if d.move {
		// Not at once: a call of the client's own that failed for the same
		// reason is likely moving it already, and a second failover
		// started meanwhile would fail that call with ErrReconnecting.
		c.clk.AfterFunc(moveDelay, c.probe)
	}
}

// insert adds msgs to v, calling OnMessage for each newly shown message,
// and returns how many were not duplicates.
func (c *Client) insert(v *View, msgs []chatapi.Message) (fresh int) {
	c.cbMu.Lock()
	defer c.cbMu.Unlock()
	c.mu.Lock()
	shown, fresh := v.insertAll(msgs)
	c.mu.Unlock()
	if c.cfg.OnMessage != nil {
		for _, m := range shown {
			c.cfg.OnMessage(m)
		}
	}
	return fresh
}

// syncRoom fetches what room's view lacks, page by page, from st.
func (c *Client) syncRoom(ctx context.Context, st chatapi.Stub, token, room string) error {
	c.mu.Lock()
	v := c.rooms.view(room)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		have := v.Have()
		c.mu.Unlock()
		r, err := st.Sync(ctx, chatapi.SyncArgs{Token: token, Room: room, Have: have})
		if err != nil {
			return err
		}
		fresh := c.insert(v, r.Messages)
		if !r.More || fresh == 0 {
			c.mu.Lock()
			c.rooms.markSynced(room)
			c.mu.Unlock()
			return nil
		}
	}
}

// scheduleSync arranges for room to be synced in the background: at once
// for a full sync, or after GapSyncDelay if gapOnly (and then only if the
// room still has a hole).
func (c *Client) scheduleSync(room string, gapOnly bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if !gapOnly {
		c.rooms.markUnsynced(room)
	}
	pending, delay := c.pendingFull, time.Duration(0)
	if gapOnly {
		if c.cfg.GapSyncDelay < 0 {
			return
		}
		pending, delay = c.pendingGap, c.cfg.GapSyncDelay
	}
	if pending[room] {
		return
	}
	pending[room] = true
	c.clk.AfterFunc(delay, func() { c.backgroundSync(room, gapOnly) })
}

// backgroundSync is a scheduled sync of room.
func (c *Client) backgroundSync(room string, gapOnly bool) {
	c.mu.Lock()
	if gapOnly {
		delete(c.pendingGap, room)
	} else {
		delete(c.pendingFull, room)
	}
	closed, member, v := c.closed, c.rooms.member[room], c.rooms.views[room]
	holes := v != nil && v.Gaps()
	c.mu.Unlock()
	if closed || !member || v == nil || (gapOnly && !holes) {
		return
	}
	err := c.withServer(c.bg, func(st chatapi.Stub, token string) error {
		return c.syncRoom(c.bg, st, token, room)
	})
	if err != nil && c.bg.Err() == nil {
		// Until it succeeds the room may miss messages (and its settled
		// notices are ignored): try again later. While the chat server is
		// being replaced this is expected, so only other failures warn.
		level := slog.LevelWarn
		if needsFailover(err) {
			level = slog.LevelDebug
		}
		c.log.Log(c.bg, level, "client: background sync failed; will retry", "room", room, "err", err)
		c.clk.AfterFunc(retrySyncDelay, func() { c.scheduleSync(room, gapOnly) })
	}
}
