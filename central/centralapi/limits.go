package centralapi

// Limits on the arguments the central server accepts, enforced by rmi
// before a method runs (see rmi.ArgLimits): the encoded size is checked
// before the arguments are decoded. A caller that breaks one gets
// rmi.ErrTooLarge.
const (
	// smallArgBytes caps arguments made of a token and a name or two.
	smallArgBytes = 1 << 10
	// passwordArgBytes caps arguments carrying passwords (at most 1024
	// bytes each, see ErrWeakPassword; a longer one is refused by the
	// method itself) and a recovery code.
	passwordArgBytes = 8 << 10
)

// MaxArgBytes implements rmi.ArgLimits.
func (SignUpArgs) MaxArgBytes() int { return passwordArgBytes }

// CheckLimits implements rmi.ArgLimits.
func (SignUpArgs) CheckLimits() error { return nil }

// MaxArgBytes implements rmi.ArgLimits.
func (LoginArgs) MaxArgBytes() int { return passwordArgBytes }

// CheckLimits implements rmi.ArgLimits.
func (LoginArgs) CheckLimits() error { return nil }

// MaxArgBytes implements rmi.ArgLimits.
func (ReassignArgs) MaxArgBytes() int { return smallArgBytes }

// CheckLimits implements rmi.ArgLimits.
func (ReassignArgs) CheckLimits() error { return nil }

// MaxArgBytes implements rmi.ArgLimits.
func (ResetArgs) MaxArgBytes() int { return passwordArgBytes }

// CheckLimits implements rmi.ArgLimits.
func (ResetArgs) CheckLimits() error { return nil }

// MaxArgBytes implements rmi.ArgLimits.
func (LogoutArgs) MaxArgBytes() int { return smallArgBytes }

// CheckLimits implements rmi.ArgLimits.
func (LogoutArgs) CheckLimits() error { return nil }

// MaxArgBytes implements rmi.ArgLimits: the tokens of a server's attached
// sessions are bounded by the transport's cap on cluster requests only.
func (RegisterArgs) MaxArgBytes() int { return 0 }

// CheckLimits implements rmi.ArgLimits.
func (RegisterArgs) CheckLimits() error { return nil }

// MaxArgBytes implements rmi.ArgLimits.
func (RenewArgs) MaxArgBytes() int { return smallArgBytes }

// CheckLimits implements rmi.ArgLimits.
func (RenewArgs) CheckLimits() error { return nil }

// MaxArgBytes implements rmi.ArgLimits.
func (UnregisterArgs) MaxArgBytes() int { return smallArgBytes }

// CheckLimits implements rmi.ArgLimits.
func (UnregisterArgs) CheckLimits() error { return nil }

// MaxArgBytes implements rmi.ArgLimits.
func (SessionArgs) MaxArgBytes() int { return smallArgBytes }

// CheckLimits implements rmi.ArgLimits.
func (SessionArgs) CheckLimits() error { return nil }

// MaxArgBytes implements rmi.ArgLimits.
func (RoomArgs) MaxArgBytes() int { return smallArgBytes }

// CheckLimits implements rmi.ArgLimits.
func (RoomArgs) CheckLimits() error { return nil }

// MaxArgBytes implements rmi.ArgLimits.
func (DirectArgs) MaxArgBytes() int { return smallArgBytes }

// CheckLimits implements rmi.ArgLimits.
func (DirectArgs) CheckLimits() error { return nil }

// MaxArgBytes implements rmi.ArgLimits.
func (RoomQuery) MaxArgBytes() int { return smallArgBytes }

// CheckLimits implements rmi.ArgLimits.
func (RoomQuery) CheckLimits() error { return nil }

// MaxArgBytes implements rmi.ArgLimits.
func (UserArgs) MaxArgBytes() int { return smallArgBytes }

// CheckLimits implements rmi.ArgLimits.
func (UserArgs) CheckLimits() error { return nil }
