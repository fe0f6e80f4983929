package servertest

import (
	"context"
	"slices"
	"sync"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
)

// RawClient is the least a client can be: a session attached to a chat
// server, which the test calls through Chat, and a chatapi.Callback that
// records everything delivered to it. It keeps no rooms and never syncs
// or fails over by itself; tests of the chat server use it to see exactly
// what the server sends.
type RawClient struct {
	// User is the session's user, Token its session token and Server the
	// chat server it is attached to.
	User, Token, Server string
	// Chat calls the chat server over Conn.
	Chat chatapi.Stub
	// Conn is the client's connection to its chat server.
	Conn *Conn

	mu       sync.Mutex
	messages []chatapi.Message
	events   []chatapi.Event
	voice    []chatapi.VoiceDeliverArgs
	hold     chan struct{} // while not nil, Deliver waits for it to close
	held     int           // Deliver calls waiting for hold
}

// Login logs user in at central, placed on chat server name (an empty name
// leaves the choice to central), and attaches a RawClient there. It fails
// the test if central places the user elsewhere.
func (c *Cluster) Login(user, name string) *RawClient {
	c.t.Helper()
	c.Place(user, name)
	lr, err := c.Central().Login(context.Background(), centralapi.LoginArgs{User: user, Password: c.Password(user)})
	if err != nil {
		c.t.Fatalf("servertest: log %s in: %v", user, err)
	}
	if name != "" && (lr.Server.Name != name || lr.Server.Addr != c.Addr(name)) {
		c.t.Fatalf("servertest: %s placed on %+v, want %s at %s", user, lr.Server, name, c.Addr(name))
	}
	return c.Attach(user, lr.Token, lr.Server.Name)
}

// Attach attaches a RawClient for user's session token to chat server
// name, wherever central placed the session: to attach again after a
// restart, or a second session of the same user.
func (c *Cluster) Attach(user, token, name string) *RawClient {
	c.t.Helper()
	rc := &RawClient{User: user, Token: token, Server: name}
	callbacks := rmi.NewTable(rmitest.QuietLogger())
	if err := rmi.Export[chatapi.Callback](callbacks, chatapi.CallbackObjectName, rc); err != nil {
		c.t.Fatalf("servertest: %v", err)
	}
	ctx := context.Background()
	conn, err := c.Dial(ctx, c.Addr(name), callbacks)
	if err != nil {
		c.t.Fatalf("servertest: %s dials %s: %v", user, name, err)
	}
	rc.Conn, rc.Chat = conn, chatapi.Stub{Inv: conn}
	if _, err := rc.Chat.Attach(ctx, chatapi.AttachArgs{Token: token}); err != nil {
		c.t.Fatalf("servertest: %s attaches to %s: %v", user, name, err)
	}
	return rc
}

// Deliver implements chatapi.Callback: it records the messages and events,
// after waiting while the client is held (Hold).
func (rc *RawClient) Deliver(ctx context.Context, a chatapi.DeliverArgs) error {
	rc.mu.Lock()
	hold := rc.hold
	if hold != nil {
		rc.held++
	}
	rc.mu.Unlock()
	if hold != nil {
		var err error
		select {
		case <-hold:
		case <-ctx.Done():
			err = ctx.Err()
		}
		rc.mu.Lock()
		rc.held--
		rc.mu.Unlock()
		if err != nil {
			return err
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.messages = append(rc.messages, a.Messages...)
	rc.events = append(rc.events, a.Events...)
	return nil
}

// Voice implements chatapi.Callback: it records the voice signals.
func (rc *RawClient) Voice(ctx context.Context, a chatapi.VoiceDeliverArgs) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.voice = append(rc.voice, a)
	return nil
}

// VoiceSignals returns the voice signals delivered so far, in order.
func (rc *RawClient) VoiceSignals() []chatapi.VoiceDeliverArgs {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.voice)
}

// Messages returns the messages delivered so far, in delivery order.
func (rc *RawClient) Messages() []chatapi.Message {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.messages)
}

// Events returns the events delivered so far, in delivery order.
func (rc *RawClient) Events() []chatapi.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.events)
}

// Held returns how many of the chat server's Deliver calls are waiting
// while the client is held.
func (rc *RawClient) Held() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.held
}

// Hold makes the client slow: its Deliver waits, holding up the chat
// server's deliveries to it, until release is called.
func (rc *RawClient) Hold() (release func()) {
	hold := make(chan struct{})
	rc.mu.Lock()
	rc.hold = hold
	rc.mu.Unlock()
	return sync.OnceFunc(func() {
		rc.mu.Lock()
		if rc.hold == hold {
			rc.hold = nil
		}
		rc.mu.Unlock()
		close(hold)
	})
}
