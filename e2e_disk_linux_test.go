package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/distchat/distchat/client"
	"github.com/distchat/distchat/rmi/rmitest"
)

// TestEndToEndDiskFull runs a fourth chat server with its data on a small
// tmpfs and fills it: the server refuses posts without losing what it
// acknowledged, its clients move to other servers and keep posting,
// central places no one there, and once space is freed it takes users
// again, without a restart. Mounting a tmpfs needs root (CAP_SYS_ADMIN);
// without it the test is skipped.
func TestEndToEndDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes; skipped with -short")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m,mode=0700"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot mount a tmpfs (%v); CI runs as root and must", err)
		}
		t.Skipf("cannot mount a tmpfs (%v); needs root", err)
	}
	t.Cleanup(func() {
		// After the processes stop (cleanups run last-registered first).
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	h := newCluster(t)
	const full = "chat-4"
	if err := os.Symlink(mnt, filepath.Join(h.dir, full)); err != nil {
		t.Fatal(err)
	}
	h.startServer(full, "127.0.0.1:0")
	proc := h.procs[full]

	// Two users per server: logins spread by load, ties by name.
	names := []string{"ann", "bob", "cyd", "dan", "eve", "fay", "gus", "hal"}
	h.signupAll(append(names, "ivy", "jon"))
	var users, onFull []*e2eUser
	for _, n := range names {
		u := h.login(n)
		users = append(users, u)
		if u.c.Server() == full {
			onFull = append(onFull, u)
		}
	}
	if len(onFull) != 2 {
		t.Fatalf("%d users on %s, want 2: %v", len(onFull), full, userServers(users))
	}
	poster, idle := onFull[0], onFull[1]
	ctx := context.Background()
	if _, err := poster.c.CreateRoom(ctx, "disk"); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u != poster {
			if _, err := u.c.JoinRoom(ctx, "disk"); err != nil {
				t.Fatal(err)
			}
		}
	}
	var acked []string
	for i := range 3 {
		m := postAndSee(t, poster, "disk", fmt.Sprintf("before %d", i), users)
		if m.Stamp.Server != full {
			t.Fatalf("stamped by %s, want %s", m.Stamp.Server, full)
		}
		acked = append(acked, m.Text)
	}

	// Fill the disk.
	filler := filepath.Join(mnt, "filler")
	fillDisk(t, filler)

	// The poster keeps posting: a post the full disk cannot take is
	// refused there, and the client moves and posts elsewhere. (A post
	// made while the client's pings are already moving it fails with
	// ErrReconnecting, and the user tries again.)
	big := strings.Repeat("x", 8<<10)
	for i := 0; ; i++ {
		if s := poster.c.Server(); s != full && s != "" {
			break
		}
		if i == 20 {
			t.Fatalf("still on %s with its disk full; its log:\n%s", full, tail(proc.logFile, 20))
		}
		text := fmt.Sprintf("while full %d %s", i, big)
		_, err := poster.c.Say(ctx, "disk", text)
		if errors.Is(err, client.ErrReconnecting) {
			rmitest.WaitFor(t, poster.name+"'s move", func() bool { return poster.c.Server() != "" })
			continue
		}
		if err != nil {
			t.Fatalf("post %d with %s's disk full: %v", i, full, err)
		}
		acked = append(acked, text)
	}
	postAndSee(t, poster, "disk", "moved", users)
	acked = append(acked, "moved")
	// The idle user moves too, and central places no one on the failing
	// server, though it is now the least loaded.
	rmitest.WaitFor(t, idle.name+" to leave "+full, func() bool { return idle.c.Server() != "" && idle.c.Server() != full })
	ivy := h.login("ivy")
	if s := ivy.c.Server(); s == full {
		t.Fatalf("ivy placed on %s while its disk is full", full)
	}
	if err := ivy.c.Close(); err != nil {
		t.Fatal(err)
	}
	postAndSee(t, idle, "disk", "from elsewhere", users)
	acked = append(acked, "from elsewhere")

	// Space is freed: the server finds out by itself and takes users again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	rmitest.WaitFor(t, "central to hear that "+full+" recovered", func() bool {
		b, err := os.ReadFile(h.procs["central"].logFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `msg="chat server storage works again"`) && strings.Contains(line, "server="+full) {
				return true
			}
		}
		return false
	})
	if proc.exited() {
		t.Fatalf("%s exited: %v", full, proc.waitErr)
	}
	jon := h.login("jon")
	if jon.c.Server() != full {
		t.Fatalf("jon placed on %s, want the recovered %s", jon.c.Server(), full)
	}
	if _, err := jon.c.JoinRoom(ctx, "disk"); err != nil {
		t.Fatal(err)
	}
	users = append(users, jon)
	m := postAndSee(t, jon, "disk", "after", users)
	if m.Stamp.Server != full {
		t.Fatalf("jon's post stamped by %s, want %s", m.Stamp.Server, full)
	}
	acked = append(acked, "after")

	// Nothing acknowledged was lost, and everyone has the same log.
	rmitest.WaitForWhy(t, "identical logs with every acknowledged post", func() (bool, string) {
		ref := users[0].c.View("disk")
		got := textsOf(ref)
		for _, text := range acked {
			if !slices.Contains(got, text) {
				return false, fmt.Sprintf("%s lacks %.20q", users[0].name, text)
			}
		}
		for _, u := range users[1:] {
			if !sameLog(u.c.View("disk"), ref) {
				return false, fmt.Sprintf("%s's log differs from %s's", u.name, users[0].name)
			}
		}
		return true, ""
	})
}

// fillDisk writes path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill the disk: %v", err)
			}
			return
		}
	}
}

// userServers maps each user to its chat server.
func userServers(users []*e2eUser) map[string]string {
	out := map[string]string{}
	for _, u := range users {
		out[u.name] = u.c.Server()
	}
	return out
}
