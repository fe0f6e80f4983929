package central

import (
	"testing"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/rmi/rmitest"
)

// TestIssueResetCode: the operator's code replaces the user's recovery
// code, works once with ResetPassword, and changes nothing else until used.
func TestIssueResetCode(t *testing.T) {
	e := newEnv(t)
	codes := e.signUp("alice")
	e.register("s1")
	table := rmi.NewTable(rmitest.QuietLogger())
	if err := e.c.Export(table); err != nil {
		t.Fatal(err)
	}
	operator := centralapi.ClusterStub{Inv: rmi.Local{Table: table, Peer: rmi.NewPeer(1, "operator", true, nil)}}
	anon := centralapi.ClusterStub{Inv: rmi.Local{Table: table, Peer: rmi.NewPeer(2, "client", false, nil)}}

	_, err := anon.IssueResetCode(ctx, centralapi.UserArgs{User: "alice"})
	wantErr(t, "IssueResetCode without the cluster secret", err, rmi.ErrUnauthorized)
	_, err = operator.IssueResetCode(ctx, centralapi.UserArgs{User: "nobody"})
	wantErr(t, "IssueResetCode for an unknown user", err, centralapi.ErrNoSuchUser)
	_, err = operator.IssueResetCode(ctx, centralapi.UserArgs{User: "Not A Name"})
	wantErr(t, "IssueResetCode for a bad name", err, centralapi.ErrBadName)

	lr := e.login("alice")
	rep, err := operator.IssueResetCode(ctx, centralapi.UserArgs{User: "alice"})
	if err != nil || rep.RecoveryCode == "" || rep.RecoveryCode == codes[0] {
		t.Fatalf("IssueResetCode = %+v, %v", rep, err)
	}
	// Nothing else changed: the password works, the session is alive.
	e.login("alice")
	if _, err := e.c.Reassign(ctx, centralapi.ReassignArgs{Token: lr.Token}); err != nil {
		t.Fatalf("the session ended when a reset code was issued: %v", err)
	}
	// The old code is void; the new one works once.
	reset := func(code string) (centralapi.ResetReply, error) {
		return e.c.ResetPassword(ctx, centralapi.ResetArgs{User: "alice", RecoveryCode: code, NewPassword: "new password"})
	}
	_, err = reset(codes[0])
	wantErr(t, "the replaced recovery code", err, centralapi.ErrBadRecoveryCode)
	next, err := reset(rep.RecoveryCode)
	if err != nil || next.RecoveryCode == "" {
		t.Fatalf("reset with the operator's code = %+v, %v", next, err)
	}
	_, err = reset(rep.RecoveryCode)
	wantErr(t, "the operator's code used twice", err, centralapi.ErrBadRecoveryCode)
	if _, err := e.c.Login(ctx, centralapi.LoginArgs{User: "alice", Password: "new password"}); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
}
