package client

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/servertest"
	"github.com/distchat/distchat/voice"
)

// voiceNet keeps the test's WebRTC on loopback, with short ICE timeouts
// so that a peer whose host died notices in about two seconds.
var voiceNet = voice.Network{
	IPs:                 []netip.Addr{netip.MustParseAddr("127.0.0.1")},
	DisconnectedTimeout: time.Second, FailedTimeout: time.Second,
}

// voiceLogin logs user in to cluster c on the real clock.
func voiceLogin(t *testing.T, c *servertest.Cluster, user string) *Client {
	t.Helper()
	cl, err := Login(context.Background(), Config{
		Central: c.RegistryAddr(), User: user, Password: c.Password(user), Logger: rmitest.QuietLogger(),
		Dial: func(ctx context.Context, addr string, cb *rmi.Table) (Conn, error) {
			conn, err := c.Dial(ctx, addr, cb)
			if err != nil {
				return nil, err
			}
			return conn, nil
		},
	})
	if err != nil {
		t.Fatalf("Login(%s): %v", user, err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// startVoice joins cl to room's voice, sending one of the test tones.
func startVoice(t *testing.T, cl *Client, room, tone string) *VoiceCall {
	t.Helper()
	v, err := cl.StartVoice(context.Background(), VoiceCallConfig{
		Room: room, Audio: filepath.Join("..", "testdata", "voice", tone), Network: voiceNet,
		RetryWait: 200 * time.Millisecond, Rejoins: 20, Logger: rmitest.QuietLogger(),
	})
	if err != nil {
		t.Fatalf("%s joins the voice of %s: %v", cl.User(), room, err)
	}
	t.Cleanup(func() { _ = v.Leave() })
	return v
}

// waitHears waits until v has received more than n audio packets from
// each of whom (n from a stats snapshot the caller took).
func waitHears(t *testing.T, name string, v *VoiceCall, since voice.PeerStats, whom ...string) {
	t.Helper()
	rmitest.WaitForWhy(t, fmt.Sprintf("%s to hear %v", name, whom), func() (bool, string) {
		st := v.Stats()
		for _, who := range whom {
			if got, was := st.Remote[who].AudioPackets, since.Remote[who].AudioPackets; got <= was+10 {
				return false, fmt.Sprintf("%d packets from %s (%d before)", got, who, was)
			}
		}
		return true, ""
	})
}

// TestVoiceAcrossServers: three users on two chat servers talk in one
// room's voice channel, hosted on one of them; each hears the other two.
// One leaves and the others keep hearing each other; a non-member is
// refused; the host is stopped, and the channel comes back on the other
// server with every peer rejoined by itself. Goroutines end with it all.
func TestVoiceAcrossServers(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC over loopback")
	}
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		rmitest.WaitForWhy(t, "goroutines back to the baseline", func() (bool, string) {
			n := runtime.NumGoroutine()
			if n <= base {
				return true, ""
			}
			buf := make([]byte, 1<<16)
			return false, fmt.Sprintf("%d goroutines, %d at the start:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		})
	})
	ctx := context.Background()
	c := servertest.New(t, servertest.Options{Servers: 2})
	for _, u := range []string{"ann", "bob", "cat", "eve"} {
		c.AddUser(u)
	}
	c.Place("ann", "server-1")
	c.Place("bob", "server-1")
	c.Place("cat", "server-2")
	c.Place("eve", "server-2")
	ann, bob, cat, eve := voiceLogin(t, c, "ann"), voiceLogin(t, c, "bob"), voiceLogin(t, c, "cat"), voiceLogin(t, c, "eve")
	if _, err := ann.CreateRoom(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*Client{bob, cat} {
		if _, err := cl.JoinRoom(ctx, "lab"); err != nil {
			t.Fatal(err)
		}
	}

	va := startVoice(t, ann, "lab", "tone_a.ogg")
	vb := startVoice(t, bob, "lab", "tone_b.ogg")
	vc := startVoice(t, cat, "lab", "tone_c.ogg")
	host, err := c.Central().VoiceHost(ctx, centralapi.RoomArgs{User: "ann", Room: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the voice of lab is on %s", host.Server.Name)
	zero := voice.PeerStats{}
	waitHears(t, "ann", va, zero, "bob", "cat")
	waitHears(t, "bob", vb, zero, "ann", "cat")
	waitHears(t, "cat", vc, zero, "ann", "bob")
	who, err := eve.VoiceWho(ctx, "lab")
	if !errors.Is(err, centralapi.ErrNotMember) {
		t.Fatalf("eve's VoiceWho = %v, %v; want ErrNotMember", who, err)
	}
	rmitest.WaitForWhy(t, "the three to show connected", func() (bool, string) {
		who, err := ann.VoiceWho(ctx, "lab")
		if err != nil {
			return false, err.Error()
		}
		var users []string
		for _, p := range who {
			if p.Connected {
				users = append(users, p.User)
			}
		}
		return fmt.Sprint(users) == "[ann bob cat]", fmt.Sprint(users)
	})

	// A non-member is refused, and cannot signal either.
	if err := eve.VoiceJoin(ctx, "lab"); !errors.Is(err, centralapi.ErrNotMember) {
		t.Fatalf("eve's VoiceJoin: %v, want ErrNotMember", err)
	}
	if err := eve.VoiceSignal(ctx, "lab", chatapi.VoiceSignal{Kind: chatapi.VoiceAnswer, SDP: "v=0"}); !errors.Is(err, chatapi.ErrVoiceNotJoined) {
		t.Fatalf("eve's VoiceSignal: %v, want ErrVoiceNotJoined", err)
	}

	// bob leaves; ann and cat keep hearing each other.
	if err := vb.Leave(); err != nil {
		t.Fatalf("bob leaves: %v", err)
	}
	rmitest.WaitForWhy(t, "bob out of the channel", func() (bool, string) {
		who, err := cat.VoiceWho(ctx, "lab")
		return err == nil && len(who) == 2, fmt.Sprint(who, err)
	})
	waitHears(t, "ann", va, va.Stats(), "cat")
	waitHears(t, "cat", vc, vc.Stats(), "ann")

	// The host stops: the channel comes back on the other server, and
	// ann and cat rejoin by themselves.
	other := map[string]string{"server-1": "server-2", "server-2": "server-1"}[host.Server.Name]
	c.Stop(host.Server.Name)
	rmitest.WaitForWhy(t, "both to rejoin", func() (bool, string) {
		return va.Joins() > 1 && vc.Joins() > 1, fmt.Sprintf("ann %d joins, cat %d", va.Joins(), vc.Joins())
	})
	sa, sc := va.Stats(), vc.Stats()
	waitHears(t, "ann", va, sa, "cat")
	waitHears(t, "cat", vc, sc, "ann")
	moved, err := c.Central().VoiceHost(ctx, centralapi.RoomArgs{User: "cat", Room: "lab"})
	if err != nil || moved.Server.Name != other {
		t.Fatalf("voice host after %s stopped: %v, %v; want %s", host.Server.Name, moved.Server.Name, err, other)
	}
	for name, v := range map[string]*VoiceCall{"ann": va, "cat": vc} {
		if err := v.Leave(); err != nil {
			t.Errorf("%s leaves: %v", name, err)
		}
	}
}

// TestVoiceHostCrash: the host of a channel vanishes without a word (it
// is cut off from the participants' chat server, then crashes, so its
// byes are lost): the participants find out when ICE fails, and central
// when the host's lease runs out; both peers come back in the channel on
// the other server by themselves, the first attempts perhaps refused
// with ErrVoiceHostGone while central still lists the dead host.
func TestVoiceHostCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC over loopback")
	}
	ctx := context.Background()
	c := servertest.New(t, servertest.Options{Servers: 2})
	c.AddUser("ann")
	c.AddUser("bob")
	c.Place("ann", "server-2")
	c.Place("bob", "server-2")
	ann, bob := voiceLogin(t, c, "ann"), voiceLogin(t, c, "bob")
	if _, err := ann.CreateRoom(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoom(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	va := startVoice(t, ann, "lab", "tone_a.ogg")
	vb := startVoice(t, bob, "lab", "tone_b.ogg")
	zero := voice.PeerStats{}
	waitHears(t, "ann", va, zero, "bob")
	waitHears(t, "bob", vb, zero, "ann")
	host, err := c.Central().VoiceHost(ctx, centralapi.RoomArgs{User: "ann", Room: "lab"})
	if err != nil || host.Server.Name != "server-1" {
		t.Fatalf("voice host %v, %v; want the empty server-1", host.Server.Name, err)
	}
	c.Disconnect("server-1", "server-2")
	c.Crash("server-1")
	rmitest.WaitForWhy(t, "both to rejoin", func() (bool, string) {
		return va.Joins() > 1 && vb.Joins() > 1, fmt.Sprintf("ann %d joins, bob %d", va.Joins(), vb.Joins())
	})
	waitHears(t, "ann", va, va.Stats(), "bob")
	waitHears(t, "bob", vb, vb.Stats(), "ann")
	moved, err := c.Central().VoiceHost(ctx, centralapi.RoomArgs{User: "ann", Room: "lab"})
	if err != nil || moved.Server.Name != "server-2" {
		t.Fatalf("voice host after server-1 crashed: %v, %v; want server-2", moved.Server.Name, err)
	}
}

// TestVoiceParticipantServerDies: the chat server of a participant (not
// the host) crashes; its client fails over, and the call joins again
// through the new server, so that the SFU's later offers reach it: it
// hears a participant who joins after.
func TestVoiceParticipantServerDies(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC over loopback")
	}
	ctx := context.Background()
	c := servertest.New(t, servertest.Options{Servers: 2})
	for _, u := range []string{"ann", "bob", "cat", "eve"} {
		c.AddUser(u)
	}
	c.Place("ann", "server-1")
	c.Place("cat", "server-1")
	c.Place("bob", "server-2")
	c.Place("eve", "server-2")
	ann, bob, cat := voiceLogin(t, c, "ann"), voiceLogin(t, c, "bob"), voiceLogin(t, c, "cat")
	voiceLogin(t, c, "eve") // server-2 has more sessions: server-1 hosts
	if _, err := ann.CreateRoom(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*Client{bob, cat} {
		if _, err := cl.JoinRoom(ctx, "lab"); err != nil {
			t.Fatal(err)
		}
	}
	va := startVoice(t, ann, "lab", "tone_a.ogg")
	vb := startVoice(t, bob, "lab", "tone_b.ogg")
	zero := voice.PeerStats{}
	waitHears(t, "bob", vb, zero, "ann")
	c.Crash("server-2")
	rmitest.WaitForWhy(t, "bob to rejoin through server-1", func() (bool, string) {
		return vb.Joins() > 1 && bob.Server() == "server-1", fmt.Sprintf("%d joins, on %s", vb.Joins(), bob.Server())
	})
	vc := startVoice(t, cat, "lab", "tone_c.ogg")
	waitHears(t, "bob", vb, vb.Stats(), "ann", "cat")
	waitHears(t, "cat", vc, zero, "ann", "bob")
	waitHears(t, "ann", va, va.Stats(), "bob", "cat")
}

// TestVoiceSignalsAndCap drives the client API as the browser does: the
// SFU's offer comes through OnVoice; a join past the channel's cap fails
// with ErrVoiceFull across two chat servers; a signal before joining
// fails with ErrVoiceNotJoined; leaving twice too. A client that left
// is not sent the SFU's bye for it: it knows.
func TestVoiceSignalsAndCap(t *testing.T) {
	ctx := context.Background()
	c := servertest.New(t, servertest.Options{Servers: 2, VoiceMax: 1})
	c.AddUser("ann")
	c.AddUser("bob")
	c.Place("ann", "server-1")
	c.Place("bob", "server-2")
	offers := make(chan chatapi.VoiceSignal, 10)
	cfg := func(user string) Config {
		return Config{
			Central: c.RegistryAddr(), User: user, Password: c.Password(user), Logger: rmitest.QuietLogger(),
			Dial: func(ctx context.Context, addr string, cb *rmi.Table) (Conn, error) {
				conn, err := c.Dial(ctx, addr, cb)
				if err != nil {
					return nil, err
				}
				return conn, nil
			},
			OnVoice: func(room string, s chatapi.VoiceSignal) {
				if user == "ann" {
					offers <- s
				}
			},
		}
	}
	ann, err := Login(ctx, cfg("ann"))
	if err != nil {
		t.Fatal(err)
	}
	defer ann.Close()
	bob, err := Login(ctx, cfg("bob"))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if _, err := ann.CreateRoom(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoom(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	if err := ann.VoiceSignal(ctx, "lab", chatapi.VoiceSignal{Kind: chatapi.VoiceAnswer}); !errors.Is(err, chatapi.ErrVoiceNotJoined) {
		t.Fatalf("signal before joining: %v, want ErrVoiceNotJoined", err)
	}
	if err := ann.VoiceJoin(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	var s chatapi.VoiceSignal
	select {
	case s = <-offers:
	case <-time.After(rmitest.Bound):
		t.Fatal("no offer for ann")
	}
	if s.Kind != chatapi.VoiceOffer || !strings.Contains(s.SDP, "127.0.0.1") {
		t.Fatalf("ann's first signal %q, SDP %q; want an offer with a loopback candidate", s.Kind, s.SDP)
	}
	if err := bob.VoiceJoin(ctx, "lab"); !errors.Is(err, chatapi.ErrVoiceFull) {
		t.Fatalf("bob's join past the cap: %v, want ErrVoiceFull", err)
	}
	who, err := bob.VoiceWho(ctx, "lab")
	if err != nil || len(who) != 1 || who[0].User != "ann" || who[0].Connected {
		t.Fatalf("VoiceWho = %+v, %v; want ann, not connected", who, err)
	}
	if err := ann.VoiceLeave(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	if err := ann.VoiceLeave(ctx, "lab"); !errors.Is(err, chatapi.ErrVoiceNotJoined) {
		t.Fatalf("second leave: %v, want ErrVoiceNotJoined", err)
	}
	if err := bob.VoiceJoin(ctx, "lab"); err != nil {
		t.Fatalf("bob's join once ann left: %v", err)
	}

	// A direct room's channel is a call of two (its name is not a
	// channel name the SFU takes as it is).
	dm, err := ann.Direct(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := ann.VoiceJoin(ctx, dm); err != nil {
		t.Fatalf("ann calls bob: %v", err)
	}
	select {
	case s = <-offers:
	case <-time.After(rmitest.Bound):
		t.Fatal("no offer for ann's call")
	}
	if s.Kind != chatapi.VoiceOffer {
		t.Fatalf("ann's first signal in the call %q, want an offer", s.Kind)
	}
}
