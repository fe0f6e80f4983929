package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server/chatapi"
)

// withServer runs fn against the current chat server. If it fails because
// the server is unreachable (or lost the session), it fails over and runs
// fn once more against the new server.
func (c *Client) withServer(ctx context.Context, fn func(st chatapi.Stub, token string) error) error {
	conn, tok, gen, name, err := c.current()
	if err != nil {
		return err
	}
	if conn == nil {
		err = errNoServer
	} else {
		err = fn(chatapi.Stub{Inv: conn}, tok)
	}
	if errors.Is(err, chatapi.ErrSessionEnded) {
		c.sessionEnded(err)
		return err
	}
	if !needsFailover(err) || ctx.Err() != nil {
		return err
	}
	if ferr := c.failover(ctx, gen, failedServer(err, name), err); ferr != nil {
		if errors.Is(ferr, ErrReconnecting) || errors.Is(ferr, ErrClosed) {
			return fmt.Errorf("%w: %w", ferr, err)
		}
		return fmt.Errorf("%w (failover: %w)", err, ferr)
	}
	conn, tok, _, _, err = c.current()
	if err != nil {
		return err
	}
	if conn == nil {
		return errNoServer
	}
	return fn(chatapi.Stub{Inv: conn}, tok)
}

// current returns the chat server connection and session.
func (c *Client) current() (conn Conn, token string, gen uint64, name string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, "", 0, "", ErrClosed
	}
	if c.ended {
		return nil, "", 0, "", chatapi.ErrSessionEnded
	}
	return c.srv, c.token, c.gen, c.srvName, nil
}

// CreateRoom creates a room with the user as its first member.
func (c *Client) CreateRoom(ctx context.Context, room string) (centralapi.RoomInfo, error) {
	var info centralapi.RoomInfo
	err := c.withServer(ctx, func(st chatapi.Stub, token string) (err error) {
		info, err = st.CreateRoom(ctx, chatapi.RoomArgs{Token: token, Room: room})
		return err
	})
	if err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("create room %s: %w", room, err)
	}
	c.joined(room)
	return info, nil
}

// JoinRoom joins an existing room and fetches its history. If that
// fails once the user is a member, the history is fetched in the
// background, as after a delivery that says the user joined.
func (c *Client) JoinRoom(ctx context.Context, room string) (centralapi.RoomInfo, error) {
	// Until its history is in, the room's settled notices do not count.
	c.mu.Lock()
	c.rooms.markUnsynced(room)
	c.rooms.startJoin(room)
	c.mu.Unlock()
	info, err := c.joinRoom(ctx, room)
	c.mu.Lock()
	c.rooms.endJoin(room)
	member := c.rooms.member[room]
	c.mu.Unlock()
	if err != nil && member {
		c.scheduleSync(room, false)
	}
	return info, err
}

// joinRoom is JoinRoom's call and its sync.
func (c *Client) joinRoom(ctx context.Context, room string) (centralapi.RoomInfo, error) {
	var info centralapi.RoomInfo
	err := c.withServer(ctx, func(st chatapi.Stub, token string) (err error) {
		info, err = st.JoinRoom(ctx, chatapi.RoomArgs{Token: token, Room: room})
		return err
	})
	if err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("join room %s: %w", room, err)
	}
	c.joined(room)
	if err := c.sync(ctx, room); err != nil {
		return info, fmt.Errorf("join room %s: fetch history: %w", room, err)
	}
	return info, nil
}

// LeaveRoom leaves a room. The client keeps the room's view as it was
// (View still returns it), so rejoining later fetches only what is new.
func (c *Client) LeaveRoom(ctx context.Context, room string) error {
	c.mu.Lock()
	wasMember := c.rooms.member[room]
	c.mu.Unlock()
	attempts := 0
	err := c.withServer(ctx, func(st chatapi.Stub, token string) error {
		attempts++
		err := st.LeaveRoom(ctx, chatapi.RoomArgs{Token: token, Room: room})
		if (attempts > 1 || wasMember) && errors.Is(err, centralapi.ErrNotMember) {
			// An earlier attempt, or a duplicate of this request the
			// network delivered, went through: the user is out, as asked.
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("leave room %s: %w", room, err)
	}
	c.mu.Lock()
	c.rooms.leave(room)
	c.mu.Unlock()
	return nil
}

// ListRooms lists the public rooms and the user's direct rooms.
func (c *Client) ListRooms(ctx context.Context) (centralapi.ListReply, error) {
	var r centralapi.ListReply
	err := c.withServer(ctx, func(st chatapi.Stub, token string) (err error) {
		r, err = st.ListRooms(ctx, chatapi.TokenArgs{Token: token})
		return err
	})
	if err != nil {
		return centralapi.ListReply{}, fmt.Errorf("list rooms: %w", err)
	}
	return r, nil
}

// Who returns a room's members and the servers they are on.
func (c *Client) Who(ctx context.Context, room string) (centralapi.RoomInfo, error) {
	var info centralapi.RoomInfo
	err := c.withServer(ctx, func(st chatapi.Stub, token string) (err error) {
		info, err = st.Who(ctx, chatapi.RoomArgs{Token: token, Room: room})
		return err
	})
	if err != nil {
		return centralapi.RoomInfo{}, fmt.Errorf("who is in %s: %w", room, err)
	}
	return info, nil
}

// Direct returns the name of the user's direct room with peer (created on
// first use), with its history synced into a view.
func (c *Client) Direct(ctx context.Context, peer string) (string, error) {
	c.mu.Lock()
	c.rooms.markUnsynced(centralapi.DirectRoomName(c.user, peer))
	c.mu.Unlock()
	var info centralapi.RoomInfo
	err := c.withServer(ctx, func(st chatapi.Stub, token string) (err error) {
		info, err = st.Direct(ctx, chatapi.DirectArgs{Token: token, Peer: peer})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("direct room with %s: %w", peer, err)
	}
	c.joined(info.Name)
	if err := c.sync(ctx, info.Name); err != nil {
		return info.Name, fmt.Errorf("direct room with %s: fetch history: %w", peer, err)
	}
	return info.Name, nil
}

// Say posts text to room and returns the message as acknowledged (durable
// at its first server). The message gets a fresh random id; if the chat
// server is lost, the client fails over and posts again with the same id,
// so the post is stored once.
func (c *Client) Say(ctx context.Context, room, text string) (chatapi.Message, error) {
	switch {
	case text == "":
		return chatapi.Message{}, fmt.Errorf("say in %s: %w", room, chatapi.ErrEmpty)
	case len(text) > chatapi.MaxText:
		return chatapi.Message{}, fmt.Errorf("say in %s: %d bytes: %w", room, len(text), chatapi.ErrTooLarge)
	}
	id, err := c.newID()
	if err != nil {
		return chatapi.Message{}, err
	}
	m, err := c.post(ctx, room, id, text)
	if err != nil {
		return chatapi.Message{}, fmt.Errorf("say in %s: %w", room, err)
	}
	return m, nil
}

// post posts text to room with message id id (ChatServer.Post, retried
// once with the same id after a failover) and inserts the acknowledged
// message into the room's view.
func (c *Client) post(ctx context.Context, room, id, text string) (chatapi.Message, error) {
	var reply chatapi.PostReply
	err := c.withServer(ctx, func(st chatapi.Stub, token string) (err error) {
		reply, err = st.Post(ctx, chatapi.PostArgs{Token: token, Room: room, ID: id, Text: text, Seen: c.seen()})
		return err
	})
	if err != nil {
		return chatapi.Message{}, err
	}
	m := chatapi.Message{Room: room, ID: id, From: c.User(), Text: text, Stamp: reply.Stamp}
	c.insert(c.joined(room), []chatapi.Message{m})
	return m, nil
}

// Msg sends text to user in their direct room.
func (c *Client) Msg(ctx context.Context, user, text string) (chatapi.Message, error) {
	room, err := c.Direct(ctx, user)
	if err != nil {
		return chatapi.Message{}, err
	}
	return c.Say(ctx, room, text)
}

// History syncs room to completion and returns its log in stamp order.
func (c *Client) History(ctx context.Context, room string) ([]chatapi.Message, error) {
	if err := c.sync(ctx, room); err != nil {
		return nil, fmt.Errorf("history of %s: %w", room, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rooms.view(room).Messages(), nil
}

// Sync fetches what the client lacks of room from its chat server.
func (c *Client) Sync(ctx context.Context, room string) error {
	if err := c.sync(ctx, room); err != nil {
		return fmt.Errorf("sync %s: %w", room, err)
	}
	return nil
}

func (c *Client) sync(ctx context.Context, room string) error {
	return c.withServer(ctx, func(st chatapi.Stub, token string) error {
		return c.syncRoom(ctx, st, token, room)
	})
}

// newID returns a fresh message id: 16 random bytes in hex.
func (c *Client) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(c.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("client: message id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// seen returns the largest stamp in any view: what a post tells the
// server its author has seen.
func (c *Client) seen() chatapi.Stamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rooms.seen()
}

// joined records that the user is a member of room and returns its view.
func (c *Client) joined(room string) *View {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rooms.join(room)
}
