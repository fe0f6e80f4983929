package client

import (
	"sync"

	"github.com/distchat/distchat/server/chatapi"
)

// Delivery is one item of a [Feed]: a message, or an event when Event is
// not nil.
type Delivery struct {
	Message chatapi.Message
	Event   *chatapi.Event
}

// Feed is an unbounded queue of deliveries that hands a Client's messages
// and events to a consumer running elsewhere, such as the terminal client.
// Wire it as Config.OnMessage = feed.Message and Config.OnEvent =
// feed.Event. Adding never blocks (so the client's delivery path never
// waits for the consumer); the consumer waits on Ready and then Takes.
// A Feed is safe for concurrent use.
type Feed struct {
	mu    sync.Mutex
	items []Delivery
	ready chan struct{} // holds a token while items is not empty
}

// NewFeed returns an empty feed.
func NewFeed() *Feed {
	return &Feed{ready: make(chan struct{}, 1)}
}

// Message adds a message to the feed.
func (f *Feed) Message(m chatapi.Message) { f.add(Delivery{Message: m}) }

// Event adds an event to the feed.
func (f *Feed) Event(e chatapi.Event) { f.add(Delivery{Event: &e}) }

func (f *Feed) add(d Delivery) {
	f.mu.Lock()
	f.items = append(f.items, d)
	f.mu.Unlock()
	select {
	case f.ready <- struct{}{}:
	default: // a token is already there
	}
}

// Ready returns a channel that has a value when the feed may hold items.
func (f *Feed) Ready() <-chan struct{} { return f.ready }

// Take removes and returns every queued delivery, oldest first.
func (f *Feed) Take() []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	items := f.items
	f.items = nil
	return items
}
