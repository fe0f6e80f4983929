package client

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
)

// centralLink is a connection to the central server.
type centralLink struct {
	conn Conn
	inv  rmi.Invoker // conn, calling the looked-up object name
	host string      // host part of the address dialed
}

// centralTarget returns the registry address and the name to look up.
func centralTarget(s string) (addr, name string, err error) {
	if strings.HasPrefix(s, "rmi://") {
		addr, name, err = rmi.ParseURL(s)
		if err != nil {
			return "", "", fmt.Errorf("central server URL %q: %w", s, err)
		}
	} else {
		addr = s
	}
	if name == "" {
		name = centralapi.ObjectName
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		addr = net.JoinHostPort(host, strconv.Itoa(rmi.DefaultPort))
	}
	return addr, name, nil
}

// fixAddr replaces an unspecified host in addr (":7000", "0.0.0.0:7000")
// with host, the central server's host: a server that listens on all
// interfaces may advertise such an address.
func fixAddr(addr, host string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return addr
	}
	if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
		return net.JoinHostPort(host, p)
	}
	return addr
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// aliasInvoker sends calls for object from to object to.
type aliasInvoker struct {
	inv      rmi.Invoker
	from, to string
}

// Invoke implements rmi.Invoker.
func (a aliasInvoker) Invoke(ctx context.Context, object, method string, args, reply any) error {
	if object == a.from {
		object = a.to
	}
	return a.inv.Invoke(ctx, object, method, args, reply)
}

// dialCentral connects to the central server's registry, looks up the
// central server and, if it lives elsewhere, connects there.
func dialCentral(ctx context.Context, cfg Config) (*centralLink, error) {
	addr, name, err := centralTarget(cfg.Central)
	if err != nil {
		return nil, err
	}
	conn, err := cfg.Dial(ctx, addr, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to central server at %s: %w", addr, err)
	}
	ref, err := rmi.RegistryStub{Inv: conn}.Lookup(ctx, name)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("look up %s in the registry at %s: %w", name, addr, err)
	}
	if ref.Addr != "" && ref.Addr != addr {
		if other := fixAddr(ref.Addr, hostOf(addr)); other != addr {
			_ = conn.Close()
			if conn, err = cfg.Dial(ctx, other, nil); err != nil {
				return nil, fmt.Errorf("connect to central server at %s (from the registry at %s): %w", other, addr, err)
			}
			addr = other
		}
	}
	l := &centralLink{conn: conn, inv: conn, host: hostOf(addr)}
	if ref.Object != "" && ref.Object != centralapi.ObjectName {
		l.inv = aliasInvoker{inv: conn, from: centralapi.ObjectName, to: ref.Object}
	}
	return l, nil
}

// SignUp creates the account cfg.User with cfg.Password and returns its
// recovery code, the only way to reset a forgotten password.
func SignUp(ctx context.Context, cfg Config) (recoveryCode string, err error) {
	err = withCentral(ctx, cfg, func(st centralapi.Stub, cfg Config) error {
		r, err := st.SignUp(ctx, centralapi.SignUpArgs{User: cfg.User, Password: cfg.Password})
		if err != nil {
			return fmt.Errorf("sign up %s: %w", cfg.User, err)
		}
		recoveryCode = r.RecoveryCode
		return nil
	})
	return recoveryCode, err
}

// ResetPassword sets cfg.User's password to newPassword using a recovery
// code, and returns the next recovery code (the old one is spent).
func ResetPassword(ctx context.Context, cfg Config, recoveryCode, newPassword string) (newCode string, err error) {
	err = withCentral(ctx, cfg, func(st centralapi.Stub, cfg Config) error {
		r, err := st.ResetPassword(ctx, centralapi.ResetArgs{
			User: cfg.User, RecoveryCode: recoveryCode, NewPassword: newPassword,
		})
		if err != nil {
			return fmt.Errorf("reset password of %s: %w", cfg.User, err)
		}
		newCode = r.RecoveryCode
		return nil
	})
	return newCode, err
}

// withCentral runs fn on a connection to the central server that cfg (with
// its defaults applied) names, closed afterwards: for the account calls
// made without logging in.
func withCentral(ctx context.Context, cfg Config, fn func(centralapi.Stub, Config) error) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	l, err := dialCentral(ctx, cfg)
	if err != nil {
		return err
	}
	defer l.conn.Close()
	return fn(centralapi.Stub{Inv: l.inv}, cfg)
}

// centralCall runs fn on the central server, reconnecting once if the
// connection turns out to be broken.
func (c *Client) centralCall(ctx context.Context, fn func(centralapi.Stub) error) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	link := c.central
	c.mu.Unlock()
	var err error
	if link != nil {
		err = fn(centralapi.Stub{Inv: link.inv})
		if !rmi.IsUnreachable(err) || ctx.Err() != nil {
			return err
		}
	}
	nl, derr := dialCentral(ctx, c.cfg)
	if derr != nil {
		if err != nil {
			return fmt.Errorf("%w (reconnecting: %w)", err, derr)
		}
		return derr
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = nl.conn.Close()
		return ErrClosed
	}
	if c.central != link {
		// Someone else reconnected meanwhile: use theirs.
		cur := c.central
		c.mu.Unlock()
		_ = nl.conn.Close()
		nl = cur
	} else {
		c.central = nl
		c.mu.Unlock()
		if link != nil {
			_ = link.conn.Close()
		}
	}
	return fn(centralapi.Stub{Inv: nl.inv})
}
