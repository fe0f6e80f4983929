package central

import (
	"context"

	"github.com/distchat/distchat/rmi"
)

// callerAddrKey is the context key of WithCallerAddr.
type callerAddrKey struct{}

// WithCallerAddr returns a context that tells Login and ResetPassword the
// network address ("host:port" or a bare IP) of the caller they serve, for
// throttling. A front end that is not rmi, such as the central web port,
// passes its HTTP peer's address this way; an rmi call needs nothing: its
// peer's address is read from the connection.
func WithCallerAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, callerAddrKey{}, addr)
}

// callerAddr is the throttling address of the caller of ctx: the one given
// by WithCallerAddr, else the rmi peer's, else empty (an in-process call).
func callerAddr(ctx context.Context) string {
	if a, ok := ctx.Value(callerAddrKey{}).(string); ok {
		return throttleAddr(a)
	}
	if p := rmi.PeerFromContext(ctx); p != nil {
		return throttleAddr(p.Addr)
	}
	return ""
}
