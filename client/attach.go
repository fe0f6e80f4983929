package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/server/chatapi"
)

// Session is a session that exists already (central issued it to someone
// who logged in elsewhere, such as a browser) and the chat server to
// attach it to.
type Session struct {
	User, Token string
	Server      centralapi.ServerInfo
}

// Attach attaches an existing session to s.Server without logging in (no
// password is needed: the token is the credential) and syncs every room
// of the user, as Login does after its redirect. s.User may be empty: the
// chat server says whose session the token is (see Client.User). Unlike Login it does not
// fail over if that server refuses at once: the caller chose the server.
// Afterwards the Client behaves as one from Login, except that a session
// that expires cannot be renewed without a password: the client then
// reports Ended (see Config.OnStatus). cfg.User and cfg.Password may be
// empty.
//
// The chat server's web gateway uses it: each browser session gets a
// Client attached to that very chat server, so the browser reaches the
// same operations as the terminal client.
func Attach(ctx context.Context, cfg Config, s Session) (*Client, error) {
	if cfg.Central == "" {
		return nil, errors.New("client: no central server address")
	}
	cfg.User = s.User
	cfg = cfg.applyDefaults()
	lr := centralapi.LoginReply{User: s.User, Token: s.Token, Server: s.Server}
	c, err := newClient(cfg, lr)
	if err != nil {
		return nil, err
	}
	if err := c.attach(ctx, lr); err != nil {
		_ = c.Close()
		return nil, err
	}
	c.mu.Lock()
	c.loggedIn = true
	c.armPingLocked()
	c.mu.Unlock()
	return c, nil
}

// LogoutSession ends the session token at the central server that cfg
// names, everywhere: every chat server it is attached to detaches it. It
// is Logout for a session that has no Client in this process.
func LogoutSession(ctx context.Context, cfg Config, token string) error {
	if cfg.Central == "" {
		return errors.New("client: no central server address")
	}
	s, err := newCentralSet(cfg.applyDefaults(), nil, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.stub().Logout(ctx, centralapi.LogoutArgs{Token: token}); err != nil {
		return fmt.Errorf("log out: %w", err)
	}
	return nil
}

// Post posts text to room with the message id id, chosen by the caller,
// and returns the message as acknowledged. It is Say for a caller that
// keeps its own ids, such as a browser page that retries a post after
// losing the reply: the chat server stores a post with the same id once,
// and answers the retry with the first stamp.
func (c *Client) Post(ctx context.Context, room, id, text string) (chatapi.Message, error) {
	switch {
	case text == "":
		return chatapi.Message{}, fmt.Errorf("post in %s: %w", room, chatapi.ErrEmpty)
	case len(text) > chatapi.MaxText:
		return chatapi.Message{}, fmt.Errorf("post in %s: %d bytes: %w", room, len(text), chatapi.ErrTooLarge)
	}
	m, err := c.post(ctx, room, id, text)
	if err != nil {
		return chatapi.Message{}, fmt.Errorf("post in %s: %w", room, err)
	}
	return m, nil
}
