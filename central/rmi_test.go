package central

import (
	"errors"
	"testing"

	"github.com/distchat/distchat/rmi/rmitest"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
)

// TestExportOverLocal calls the central server through rmi.Local, the way
// clients and chat servers do over the network (arguments and errors are
// encoded and decoded).
func TestExportOverLocal(t *testing.T) {
	e := newEnv(t)
	table := rmi.NewTable(rmitest.QuietLogger())
	if err := e.c.Export(table); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Export(table); err == nil {
		t.Fatal("second Export succeeded")
	}
	anon := rmi.Local{Table: table, Peer: rmi.NewPeer(1, "client", false, nil)}
	member := rmi.Local{Table: table, Peer: rmi.NewPeer(2, "chat server", true, nil)}
	pub := centralapi.Stub{Inv: anon}

	// The public interface works for anyone.
	code, err := pub.SignUp(ctx, centralapi.SignUpArgs{User: "alice", Password: pw})
	if err != nil || code.RecoveryCode == "" {
		t.Fatalf("SignUp over rmi = %+v, %v", code, err)
	}
	_, err = pub.SignUp(ctx, centralapi.SignUpArgs{User: "alice", Password: pw})
	wantErr(t, "SignUp twice over rmi", err, centralapi.ErrUserExists)
	var re *rmi.RemoteError
	if !errors.As(err, &re) || re.Code != "central.user_exists" {
		t.Fatalf("error over rmi is %T %v, want *rmi.RemoteError with the code", err, err)
	}
	_, err = pub.Login(ctx, centralapi.LoginArgs{User: "alice", Password: "wrong password"})
	wantErr(t, "wrong password over rmi", err, centralapi.ErrBadCredentials)

	// The cluster interface is refused without the cluster secret, for
	// every method, and also for a caller with no Peer at all.
	for _, inv := range []rmi.Invoker{anon, rmi.Local{Table: table}} {
		cl := centralapi.ClusterStub{Inv: inv}
		calls := map[string]error{}
		_, calls["RegisterServer"] = cl.RegisterServer(ctx, centralapi.RegisterArgs{Name: "evil", Addr: "h:1"})
		_, calls["RenewServer"] = cl.RenewServer(ctx, centralapi.RenewArgs{Name: "evil"})
		calls["UnregisterServer"] = cl.UnregisterServer(ctx, centralapi.UnregisterArgs{Name: "s1"})
		_, calls["CheckSession"] = cl.CheckSession(ctx, centralapi.SessionArgs{})
		calls["EndSession"] = cl.EndSession(ctx, centralapi.SessionArgs{})
		_, calls["CreateRoom"] = cl.CreateRoom(ctx, centralapi.RoomArgs{User: "alice", Room: "r"})
		_, calls["JoinRoom"] = cl.JoinRoom(ctx, centralapi.RoomArgs{User: "alice", Room: "r"})
		_, calls["LeaveRoom"] = cl.LeaveRoom(ctx, centralapi.RoomArgs{User: "alice", Room: "r"})
		_, calls["DirectRoom"] = cl.DirectRoom(ctx, centralapi.DirectArgs{User: "alice", Peer: "bob"})
		_, calls["Room"] = cl.Room(ctx, centralapi.RoomQuery{Room: "r"})
		_, calls["ListRooms"] = cl.ListRooms(ctx, centralapi.UserArgs{User: "alice"})
		_, calls["UserRooms"] = cl.UserRooms(ctx, centralapi.UserArgs{User: "alice"})
		_, calls["IssueResetCode"] = cl.IssueResetCode(ctx, centralapi.UserArgs{User: "alice"})
		for m, err := range calls {
			wantErr(t, "anonymous "+m, err, rmi.ErrUnauthorized)
		}
	}
	if got := e.liveServers(); len(got) != 0 {
		t.Fatalf("anonymous RegisterServer took effect: %v", got)
	}
	// Nor can cluster methods be reached through the public object.
	for _, m := range []string{"CheckSession", "RegisterServer", "Room", "Close", "Export"} {
		err := anon.Invoke(ctx, centralapi.ObjectName, m, centralapi.SessionArgs{}, nil)
		wantErr(t, "public object method "+m, err, rmi.ErrNoSuchMethod)
	}

	// With the cluster secret it works, and errors keep their codes.
	cl := centralapi.ClusterStub{Inv: member}
	if _, err := cl.RegisterServer(ctx, centralapi.RegisterArgs{Name: "s1", Addr: "10.0.0.1:1099"}); err != nil {
		t.Fatalf("RegisterServer as cluster member: %v", err)
	}
	lr, err := pub.Login(ctx, centralapi.LoginArgs{User: "alice", Password: pw})
	if err != nil || lr.Server.Name != "s1" || lr.Server.Addr != "10.0.0.1:1099" {
		t.Fatalf("Login over rmi = %+v, %v", lr, err)
	}
	si, err := cl.CheckSession(ctx, centralapi.SessionArgs{Token: lr.Token, Server: "s1"})
	if err != nil || si.User != "alice" {
		t.Fatalf("CheckSession over rmi = %+v, %v", si, err)
	}
	if _, err := cl.CreateRoom(ctx, centralapi.RoomArgs{User: "alice", Room: "lobby"}); err != nil {
		t.Fatal(err)
	}
	ri, err := cl.Room(ctx, centralapi.RoomQuery{Room: "lobby"})
	if err != nil || len(ri.Members) != 1 || ri.Members[0].User != "alice" ||
		len(ri.Servers) != 1 || ri.Servers[0].Sessions != 1 {
		t.Fatalf("Room over rmi = %+v, %v", ri, err)
	}
	_, err = cl.Room(ctx, centralapi.RoomQuery{Room: "nowhere"})
	wantErr(t, "Room over rmi", err, centralapi.ErrNoSuchRoom)
	_, err = cl.LeaveRoom(ctx, centralapi.RoomArgs{User: "alice", Room: "nowhere"})
	wantErr(t, "LeaveRoom over rmi", err, centralapi.ErrNoSuchRoom)
	_, err = cl.RenewServer(ctx, centralapi.RenewArgs{Name: "s2"})
	wantErr(t, "RenewServer over rmi", err, centralapi.ErrUnknownServer)
	if errors.Is(err, centralapi.ErrNoSuchRoom) {
		t.Fatal("errors.Is matched the wrong code")
	}
	if err := pub.Logout(ctx, centralapi.LogoutArgs{Token: lr.Token}); err != nil {
		t.Fatal(err)
	}
	_, err = pub.Reassign(ctx, centralapi.ReassignArgs{Token: lr.Token})
	wantErr(t, "Reassign after Logout over rmi", err, centralapi.ErrBadSession)
}
