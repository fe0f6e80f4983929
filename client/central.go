package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/rmi"
)

// This file holds the client's calls to central (its connection is in
// centralconn.go): the account calls made without logging in, the calls
// of a logged-in client, and its move to another central server when the
// one in use is lost.

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

// withCentral runs fn on the central servers that cfg (with its defaults
// applied) names, closed afterwards: for the account calls made without
// logging in.
func withCentral(ctx context.Context, cfg Config, fn func(centralapi.Stub, Config) error) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	s, err := newCentralSet(cfg, nil, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s.stub(), cfg)
}

// centralCall runs fn on the central server, once more if the
// conversation broke (the next central server's turn, if there are
// several): central's calls may be repeated.
func (c *Client) centralCall(ctx context.Context, fn func(centralapi.Stub) error) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.central == nil {
		s, err := c.newCentralSet()
		if err != nil {
			c.mu.Unlock()
			return err
		}
		c.central = s
	}
	st := c.central.stub()
	c.mu.Unlock()
	err := fn(st)
	// ErrConnect: no central server could be reached (each was tried).
	if !rmi.IsUnreachable(err) || errors.Is(err, rmi.ErrConnect) || ctx.Err() != nil {
		return err
	}
	again := fn(st)
	if rmi.IsUnreachable(again) {
		return fmt.Errorf("%w (reconnecting: %w)", err, again)
	}
	return again
}

// newCentralSet returns the client's central servers, watched (with
// several addresses) so that a lost one is left at once. Callers hold c.mu
// or have not shared c yet.
func (c *Client) newCentralSet() (*centralSet, error) {
	return newCentralSet(c.cfg, c.centralLost, c.centralMoved)
}

// The backoff of recheckCentral while no central server answers: the
// chat server's, when it registers.
const (
	minCentralRetry = 250 * time.Millisecond
	maxCentralRetry = 5 * time.Second
)

// centralLost is called when the connection to the central server in use
// closed by itself (with several addresses only): the client connects
// again at once, at another central server if that one is gone, so that
// the status line tells the user; while none answers, it tries again
// with a backoff (from 250ms, doubling, up to 5s).
func (c *Client) centralLost() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.centralTmr != nil {
		return
	}
	c.centralDown, c.centralWait = true, 0
	c.centralTmr = c.clk.AfterFunc(0, c.recheckCentral)
}

// recheckCentral connects to a central server again after centralLost,
// with a look-up in its registry, unless another call did already.
func (c *Client) recheckCentral() {
	c.mu.Lock()
	c.centralTmr = nil
	s := c.central
	if c.closed || !c.centralDown || s == nil {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	ctx, cancel := c.clk.WithTimeout(c.bg, c.cfg.CallTimeout)
	_, err := rmi.RegistryStub{Inv: s.inv}.Lookup(ctx, s.name)
	cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !rmi.IsUnreachable(err) {
		c.centralDown = false
		return
	}
	c.centralWait = min(max(2*c.centralWait, minCentralRetry), maxCentralRetry)
	c.log.Debug("client: no central server answers; will retry", "in", c.centralWait, "err", err)
	if !c.closed && c.centralTmr == nil {
		c.centralTmr = c.clk.AfterFunc(c.centralWait, c.recheckCentral)
	}
}

// centralMoved is the Failover's OnMove: a central server answered after
// the one used before was lost. Once logged in, it is reported as a
// CentralMoved status.
func (c *Client) centralMoved(from, to string, cause error) {
	c.log.Info("client: central server lost; using another", "lost", from, "using", to, "err", cause)
	c.mu.Lock()
	report := c.loggedIn && !c.closed
	srv := c.srvName
	c.mu.Unlock()
	if report {
		c.report(Status{Kind: CentralMoved, Server: srv, Central: to, LostCentral: from})
	}
}
