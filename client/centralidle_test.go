package client

import (
	"context"
	"testing"

	"github.com/distchat/distchat/rmi/rmitest"
)

// TestIdleCentralConnectionCloses: the connection to central closes once
// it has been idle for CentralIdle, and the next call connects again; a
// call within CentralIdle reuses it.
func TestIdleCentralConnectionCloses(t *testing.T) {
	w := newWorld(t, 1)
	w.AddUser("ann")
	w.AddUser("bob")
	ann, _ := login(t, w, "ann")
	bob, _ := login(t, w, "bob")
	// Dials to anything but the chat server: the registry, and central
	// if it lives elsewhere.
	centralDials := func(user string) int {
		n := 0
		for _, a := range w.dialed(user) {
			if a != w.Addr("server-1") {
				n++
			}
		}
		return n
	}
	annDials, bobDials := centralDials("ann"), centralDials("bob")
	if bobDials == 0 {
		t.Fatal("logging in dialed no central server")
	}

	w.clk.Add(DefaultCentralIdle / 2)
	if err := ann.Logout(context.Background()); err != nil {
		t.Fatalf("logout within the idle time: %v", err)
	}
	if n := centralDials("ann"); n != annDials {
		t.Errorf("ann's client dialed %d times more to log out within the idle time; want 0 (the connection is reused)", n-annDials)
	}

	// The mock runs a timer's function in a goroutine of its own, and
	// Add returns after letting goroutines run for only 1 ms: wait for
	// the close, within rmitest's bound.
	w.clk.Add(DefaultCentralIdle)
	rmitest.WaitFor(t, "bob's client to let go of central after the idle time", func() bool { return !bob.CentralConnected() })
	if err := bob.Logout(context.Background()); err != nil {
		t.Fatalf("logout after the connection closed for idleness: %v", err)
	}
	if n := centralDials("bob"); n != 2*bobDials {
		t.Errorf("bob's client dialed central %d times more to log out after the idle time; want %d, as at login (a new connection)", n-bobDials, bobDials)
	}
}
