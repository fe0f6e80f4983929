package term

import (
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
	"github.com/distchat/distchat/server/servertest"
	"github.com/distchat/distchat/voice"
)

// TestVoiceCommands runs /voice on a real client: ann joins a room's
// voice from the terminal with a tone, bob with a Go call; ann's /voice
// stats (JSON) come to show packets and bytes from bob, her recording of
// bob is written, and /voice leave ends it.
func TestVoiceCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("real WebRTC over loopback")
	}
	ctx := context.Background()
	c := servertest.New(t, servertest.Options{Servers: 2})
	loop := voice.Network{IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
	login := func(user, server string) *client.Client {
		c.AddUser(user)
		c.Place(user, server)
		cl, err := client.Login(ctx, client.Config{
			Central: c.RegistryAddr(), User: user, Password: c.Password(user), Logger: rmitest.QuietLogger(),
			Dial: func(ctx context.Context, addr string, callbacks *rmi.Table) (client.Conn, error) {
				conn, err := c.Dial(ctx, addr, callbacks)
				if err != nil {
					return nil, err
				}
				return conn, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
	ann, bob := login("ann", "server-1"), login("bob", "server-2")
	if _, err := ann.CreateRoom(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoom(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	tone := func(name string) string { return filepath.Join("..", "..", "testdata", "voice", name) }
	vb, err := bob.StartVoice(ctx, client.VoiceCallConfig{Room: "lab", Audio: tone("tone_b.ogg"), Network: loop, Logger: rmitest.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer vb.Leave()

	rec := t.TempDir()
	in, inW := io.Pipe()
	var out, errOut rmitest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, ann, in, &out, &errOut, Options{JSON: true, StartVoice: ann.StartVoice,
			VoiceRecord: rec, VoiceNetwork: loop, VoiceLogger: rmitest.QuietLogger()})
	}()
	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	send("/voice join lab " + tone("tone_a.ogg"))
	send("/voice join lab " + tone("tone_a.ogg")) // refused: already in
	// fromBob is the last stats line about bob, or zero.
	fromBob := func() jsonVoice {
		var last jsonVoice
		for _, l := range out.Lines() {
			var j jsonVoice
			if json.Unmarshal([]byte(l), &j) == nil && j.Type == "voice" && j.User == "bob" {
				last = j
			}
		}
		return last
	}
	rmitest.WaitFor(t, "ann's stats to show bob's audio", func() bool {
		send("/voice stats lab")
		j := fromBob()
		return j.Packets > 10 && j.Bytes > j.Packets
	})
	send("/voice leave lab")
	send("/voice stats lab") // refused: not in
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `{"type":"ok","cmd":"voice-join","room":"lab"}`) ||
		!strings.Contains(out.String(), `{"type":"ok","cmd":"voice-leave","room":"lab"}`) {
		t.Fatalf("output:\n%s", out.String())
	}
	if e := errOut.Lines(); len(e) != 2 || !strings.Contains(e[0], "already in the voice of lab") || !strings.Contains(e[1], "not in the voice of lab") {
		t.Fatalf("errors %q", e)
	}
	if fi, err := os.Stat(filepath.Join(rec, "lab", "bob.ogg")); err != nil || fi.Size() == 0 {
		t.Fatalf("ann's recording of bob: %v, %v", fi, err)
	}
}
