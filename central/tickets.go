package central

// This file holds web login tickets: after the central web port logs a
// browser in, it redirects the browser to the chat server it placed the
// session on, with a one-time ticket in the address. The chat server
// redeems the ticket here for the session's token (RedeemTicket), and sets
// that as its cookie. A ticket is short-lived, works once and only at the
// server it names, and is kept in memory only: a central restart voids
// the outstanding ones (the browser just logs in again). Front-ends that
// share a store keep tickets in it instead, on a lease of TicketTTL, so
// that a ticket issued by one is redeemed at any (issueShared).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv"
)

// maxTickets bounds the tickets outstanding at once; issuing one more
// drops the oldest. Tickets come only from successful (throttled) logins.
const maxTickets = 10000

// ticket is an issued, unredeemed web login ticket.
type ticket struct {
	token   string
	server  string
	expires time.Time
}

// IssueTicket returns a one-time ticket for the session token, to be
// redeemed by chat server server within centralapi.TicketTTL. The central
// web port calls it after a login or a reassignment.
func (c *Central) IssueTicket(token, server string) (string, error) {
	if _, err := sessionKey(token); err != nil {
		return "", fmt.Errorf("issue ticket: %w", err)
	}
	b := make([]byte, 24)
	if err := c.readRand(b); err != nil {
		return "", fmt.Errorf("issue ticket: %w", err)
	}
	t := hex.EncodeToString(b)
	if c.shared {
		return t, c.issueShared(t, token, server)
	}
	now := c.clk.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tickets == nil {
		c.tickets = map[string]ticket{}
	}
	// Tickets expire in the order they were issued: drop from the front
	// of the queue the expired ones, and the oldest beyond the cap.
	for len(c.ticketQueue) > 0 {
		k := c.ticketQueue[0]
		tk, ok := c.tickets[k]
		if ok && now.Before(tk.expires) && len(c.tickets) < maxTickets {
			break
		}
		delete(c.tickets, k)
		c.ticketQueue = c.ticketQueue[1:]
	}
	k := ticketKey(t)
	c.ticketQueue = append(c.ticketQueue, k)
	c.tickets[k] = ticket{token: token, server: server, expires: now.Add(centralapi.TicketTTL)}
	return t, nil
}

// RedeemTicket implements [Cluster]: it spends a ticket issued for chat
// server args.Server and returns its session, if that is still valid.
// Unknown, spent, expired and other servers' tickets all get ErrBadTicket.
func (c *Central) RedeemTicket(ctx context.Context, a centralapi.TicketArgs) (centralapi.TicketReply, error) {
	if err := checkServer(a.Server); err != nil {
		return centralapi.TicketReply{}, fmt.Errorf("redeem ticket: %w", err)
	}
	if c.shared {
		return c.redeemShared(ctx, a)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := ticketKey(a.Ticket)
	tk, ok := c.tickets[k]
	if !ok || tk.server != a.Server || !c.clk.Now().Before(tk.expires) {
		return centralapi.TicketReply{}, fmt.Errorf("redeem ticket at %s: %w", q(a.Server), centralapi.ErrBadTicket)
	}
	delete(c.tickets, k)
	key, err := sessionKey(tk.token)
	if err != nil {
		return centralapi.TicketReply{}, fmt.Errorf("redeem ticket: %w", err)
	}
	rec, err := c.validSession(ctx, key)
	if err != nil {
		return centralapi.TicketReply{}, fmt.Errorf("redeem ticket: %w", err)
	}
	return centralapi.TicketReply{User: rec.User, Token: tk.token}, nil
}

// ticketKey is what the ticket map is keyed by: a ticket's hash, so the
// map holds no redeemable secret.
func ticketKey(t string) string {
	sum := sha256.Sum256([]byte(t))
	return string(sum[:])
}

// ticketRecord is a web login ticket in the shared store. The token is
// kept in clear for the ticket's minute, as in memory: the chat server
// that redeems the ticket needs it.
type ticketRecord struct {
	Token  string `json:"token"`
	Server string `json:"server"`
}

// issueShared stores ticket t for token at server, on a lease of
// centralapi.TicketTTL, so that any front-end redeems it.
func (c *Central) issueShared(t, token, server string) error {
	ctx, cancel := c.clk.WithTimeout(c.bg, pushTimeout)
	defer cancel()
	raw, err := json.Marshal(ticketRecord{Token: token, Server: server})
	if err != nil {
		return err
	}
	lease, err := c.store.Grant(ctx, centralapi.TicketTTL)
	if err != nil {
		return fmt.Errorf("issue ticket: %w", err)
	}
	if _, _, err := c.store.Txn(ctx, nil, []kv.Op{kv.PutLease(prefixTickets+hex.EncodeToString([]byte(ticketKey(t))), raw, lease)}); err != nil {
		return fmt.Errorf("issue ticket: %w", err)
	}
	return nil
}

// redeemShared spends a ticket of the shared store: deleting it is the
// spending, so two redemptions cannot both succeed.
func (c *Central) redeemShared(ctx context.Context, a centralapi.TicketArgs) (centralapi.TicketReply, error) {
	bad := fmt.Errorf("redeem ticket at %s: %w", q(a.Server), centralapi.ErrBadTicket)
	cur, ok, err := c.store.Get(ctx, prefixTickets+hex.EncodeToString([]byte(ticketKey(a.Ticket))))
	if err != nil {
		return centralapi.TicketReply{}, fmt.Errorf("redeem ticket: %w", err)
	}
	var tk ticketRecord
	if !ok || json.Unmarshal(cur.Value, &tk) != nil || tk.Server != a.Server {
		return centralapi.TicketReply{}, bad
	}
	spent, _, err := c.store.Txn(ctx, []kv.Cmp{kv.Unchanged(cur)}, []kv.Op{kv.Delete(cur.Key)})
	if err != nil {
		return centralapi.TicketReply{}, fmt.Errorf("redeem ticket: %w", err)
	}
	if !spent {
		return centralapi.TicketReply{}, bad
	}
	key, err := sessionKey(tk.Token)
	if err != nil {
		return centralapi.TicketReply{}, fmt.Errorf("redeem ticket: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, err := c.validSession(ctx, key)
	if err != nil {
		return centralapi.TicketReply{}, fmt.Errorf("redeem ticket: %w", err)
	}
	return centralapi.TicketReply{User: rec.User, Token: tk.Token}, nil
}
