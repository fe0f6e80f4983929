package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/client/term"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/voice"
)

// loginTimeout bounds logging in (central, redirect, attach, first sync).
const loginTimeout = 30 * time.Second

const clientDescription = `Logs in at the central server, follows its redirect to a chat server, and
runs the terminal client. On a terminal it is interactive (a line editor;
messages print above the prompt). Otherwise it reads one command per line
from stdin, which makes it scriptable:

  /create ROOM       create a room and join it
  /join ROOM         join a room (its history follows)
  /leave [ROOM]      leave a room (default: the current room)
  /rooms             list rooms
  /who [ROOM]        list a room's members and the servers they are on
  /msg USER TEXT     send a direct (1:1) message
  /say ROOM TEXT     send a message to a room
  /history [ROOM]    print a room's whole log in stamp order
  /voice join ROOM FILE.ogg
                     join ROOM's voice channel, sending an Ogg Opus file
                     (looped); with --voice-record DIR, what the others
                     send is recorded to DIR/ROOM/USER.ogg
  /voice leave ROOM  leave it, printing packets and bytes per participant
  /voice stats [ROOM] print packets and bytes received per participant
  /wait DURATION     wait (e.g. 2s) while messages keep arriving
  /help              list the commands
  /quit              leave
  TEXT               (no leading /) send to the current room: the last one
                     joined or used, which /leave, /who and /history take
                     when they name no ROOM

With --json every delivered message (and each /history line) prints as one
JSON object per line with the fields type, room, id, from, text, time
(RFC 3339, UTC), server, seq and stamp (Unix ns); command results print as
{"type":"ok",...}. Members joining and leaving a room print as "bob joined
lobby" ({"type":"event","kind":"joined",...}). Errors print to stderr, one
line each, and the next command runs. If its chat server dies, the client
moves to another one and catches up, with no gap and no duplicate; that
prints as two lines, "connection to server-2 lost; reconnecting…" and
"back, on server-3" ({"type":"status","status":"lost"|"back","server":...}),
and the details go to the log (--log-level debug). With several central
servers (--central a,b: one cluster), when the one in use is lost the
client moves to the next and prints "central a lost; using b"
({"type":"status","status":"central","central":"b","lostCentral":"a",...}).

In a room's voice channel the client is a participant without a
microphone: it plays the file, and if the chat server hosting the
channel goes away it joins again by itself (the channel moves to a live
server). /voice stats prints "voice ROOM: from USER N packets, B bytes"
({"type":"voice","room":...,"user":...,"packets":N,"bytes":B}) per
other participant, then what it sent ({"type":"voice","room":...,
"sentAudio":N,"joins":J}).

The password comes from --password-file, else DISTCHAT_PASSWORD, else a
prompt on the terminal. The exit status is 1 if the login fails.

Every connection is TLS 1.3, and every server must show a certificate
signed by the cluster CA: the CA given with --ca (a copy of central's
ca.crt), or else the one central showed on the first connection to its
address, whose fingerprint is printed then and pinned in the
known-centrals file, as SSH does; a different CA later is refused.`

// runClient is the "client" subcommand.
func runClient(ctx context.Context, e *env, args []string) error {
	f := newFlagSet(e, "client", "--user NAME [--central HOST:PORT[,HOST:PORT…]] [--json] [--password-file FILE]", clientDescription, "warn")
	centralFlag := f.String("central", "127.0.0.1:1099", "central server `HOST:PORT`, or several of one cluster, comma-separated (moves to the next when one is down)")
	user := f.String("user", "", "user `NAME` (required)")
	jsonOut := f.Bool("json", false, "print messages and results as JSON lines")
	pwFile := f.String("password-file", "", "read the password from `FILE`")
	voiceRecord := f.String("voice-record", "", "record what /voice join receives to `DIR`/ROOM/USER.ogg")
	tf := addTrustFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.required("central", "user"); err != nil {
		return err
	}
	interactive := e.stdinTTY && isTerminal(e.stdout)
	// The line editor puts the terminal in raw mode, where a bare \n does
	// not return the carriage: while it is on, log lines need \r\n.
	stderr := &crlfWriter{w: e.stderr}
	e.stderr = stderr
	log, err := f.logger()
	if err != nil {
		return err
	}
	caddrs, err := centralAddrs(*centralFlag)
	if err != nil {
		return usagef("--central: %v", err)
	}
	trust, err := tf.trust(e, caddrs)
	if err != nil {
		return err
	}
	pw, err := readPassword(e, *pwFile, "Password for "+*user, false)
	if err != nil {
		return err
	}
	clk := clock.New()
	feed := term.NewFeed()
	cfg := client.Config{
		Central: *centralFlag, User: *user, Password: pw, Clock: clk, Logger: log,
		Dial:      client.TLSDialer(rmi.DialConfig{Clock: clk, Logger: log}, trust.ClientConfig),
		OnMessage: feed.Message, OnEvent: feed.Event, OnStatus: feed.Status,
	}
	lctx, cancel := context.WithTimeout(ctx, loginTimeout)
	c, err := client.Login(lctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	// Leaving ends the session: each run logs in afresh, so a session left
	// open would only sit in central's database until it expires.
	defer func() {
		lctx, cancel := clk.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Logout(lctx); err != nil {
			c.Close()
		}
	}()
	if interactive {
		fmt.Fprintf(e.stdout, "logged in as %s on chat server %s; /help lists the commands\n", c.User(), c.Server())
		restore, err := term.MakeRaw(e.stdinFD)
		if err != nil {
			return err
		}
		stderr.raw.Store(true)
		defer func() {
			stderr.raw.Store(false)
			restore()
		}()
	}
	err = term.Run(ctx, c, e.stdin, e.stdout, e.stderr, term.Options{
		JSON: *jsonOut, Interactive: interactive, Clock: clk, Feed: feed,
		StartVoice: c.StartVoice, VoiceRecord: *voiceRecord, VoiceNetwork: voiceNetwork(caddrs[0]), VoiceLogger: log,
	})
	switch {
	case errors.Is(err, context.Canceled):
		return nil // Ctrl-C or SIGTERM: a normal way to leave
	case errors.Is(err, term.ErrSessionEnded):
		return errShown // the terminal said "session ended: ..."
	}
	return err
}

// voiceNetwork is where the client's voice peers take their addresses:
// loopback when central is on loopback (a cluster on one machine, whose
// chat servers offer loopback too), else every interface but loopback.
func voiceNetwork(centralAddr string) voice.Network {
	host, _, err := net.SplitHostPort(centralAddr)
	if err != nil {
		return voice.Network{}
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return voice.Network{IPs: []netip.Addr{ip.Unmap()}}
	}
	return voice.Network{}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// crlfWriter writes to w, turning "\n" into "\r\n" while raw is set (the
// terminal is in raw mode).
type crlfWriter struct {
	w   io.Writer
	raw atomic.Bool
}

// Write implements io.Writer.
func (c *crlfWriter) Write(p []byte) (int, error) {
	if !c.raw.Load() {
		return c.w.Write(p)
	}
	if _, err := c.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}
