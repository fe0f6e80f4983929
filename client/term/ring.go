package term

import (
	"fmt"
	"time"

	"github.com/distchat/distchat/server/chatapi"
)

// ringQuiet is how long after a direct room's last ring another one is
// still the same call: the server rings every few seconds while the
// caller waits, and the terminal prints each call once.
const ringQuiet = 10 * time.Second

// printRing prints an incoming call, "ann is calling you (dm:ann:bob):
// /voice join dm:ann:bob FILE to answer", once per call, and not when the
// user is already in the room's voice channel.
func (t *terminal) printRing(e chatapi.Event) {
	now := t.opts.Clock.Now()
	last, rung := t.rang[e.Room]
	if t.rang == nil {
		t.rang = map[string]time.Time{}
	}
	t.rang[e.Room] = now
	if t.calls[e.Room] != nil || rung && now.Sub(last) < ringQuiet {
		return
	}
	t.println(fmt.Sprintf("%s is calling you (%s): /voice join %s FILE to answer", e.User, e.Room, e.Room))
}
