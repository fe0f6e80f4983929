package centralapi

import "github.com/distchat/distchat/rmi"

// Limits on the arguments the central server accepts, enforced by rmi
// before a method runs (see rmi.ArgLimits): the encoded size and the
// lengths of maps and arrays are checked before the arguments are decoded.
// A caller that breaks one gets rmi.ErrTooLarge.
const (
	// smallArgBytes caps arguments made of a token and a name or two.
	smallArgBytes = 1 << 10
	// smallArgLen caps the entries of the maps and arrays of arguments
	// with no collection of their own: their structs have a few fields.
	smallArgLen = 16
	// passwordArgBytes caps arguments carrying passwords (at most 1024
	// bytes each, see ErrWeakPassword; a longer one is refused by the
	// method itself) and a recovery code.
	passwordArgBytes = 8 << 10
)

// MaxServerSessions is the most sessions a chat server may report as
// attached when it registers.
const MaxServerSessions = 1 << 20

// ArgCaps implements rmi.ArgLimits.
func (SignUpArgs) ArgCaps() rmi.ArgCaps {
	return rmi.ArgCaps{Bytes: passwordArgBytes, Len: smallArgLen}
}

// CheckLimits implements rmi.ArgLimits.
func (SignUpArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (LoginArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: passwordArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (LoginArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (ReassignArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (ReassignArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (ResetArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: passwordArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (ResetArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (LogoutArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (LogoutArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits: the tokens of a server's attached
// sessions are bounded by the transport's cap on cluster requests, and
// by MaxServerSessions.
func (RegisterArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Len: MaxServerSessions} }

// CheckLimits implements rmi.ArgLimits.
func (RegisterArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits: Sessions, like RegisterArgs's, is
// bounded by MaxServerSessions.
func (RenewArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Len: MaxServerSessions} }

// CheckLimits implements rmi.ArgLimits.
func (RenewArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (UnregisterArgs) ArgCaps() rmi.ArgCaps {
	return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen}
}

// CheckLimits implements rmi.ArgLimits.
func (UnregisterArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (SessionArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (SessionArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (RoomArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (RoomArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (DirectArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (DirectArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (RoomQuery) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (RoomQuery) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (UserArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (UserArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (TicketArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (TicketArgs) CheckLimits() error { return nil }

// ArgCaps implements rmi.ArgLimits.
func (SearchArgs) ArgCaps() rmi.ArgCaps { return rmi.ArgCaps{Bytes: smallArgBytes, Len: smallArgLen} }

// CheckLimits implements rmi.ArgLimits.
func (SearchArgs) CheckLimits() error { return nil }
