package web

import (
	"context"
	"fmt"
	"slices"

	"github.com/distchat/distchat/central/centralapi"
)

// maxName bounds the room and user names and the search prefix the
// gateway passes on; the servers check the real rules.
const maxName = 128

// searchLimit is how many users a search returns.
const searchLimit = 20

// run carries out one command of the page as the session's user, with
// the same Client call the terminal client makes for it, and returns the
// reply's fields.
func (h *Handler) run(ctx context.Context, s *session, req request) (map[string]any, error) {
	c := s.client()
	if len(req.Room) > maxName || len(req.User) > maxName || len(req.Prefix) > maxName || len(req.Stamp) > maxName || len(req.Before) > maxName {
		return nil, fmt.Errorf("%s: name too long: %w", req.Op, ErrBadRequest)
	}
	switch req.Op {
	case "post":
		if req.Room == "" || req.ID == "" {
			return nil, fmt.Errorf("post: no room or id: %w", ErrBadRequest)
		}
		if !h.limit.allow(c.User()) {
			return nil, ErrRateLimited
		}
		m, err := c.Post(ctx, req.Room, req.ID, req.Text)
		if err != nil {
			return nil, err
		}
		before := ""
		if next, ok := c.Next(req.Room, m.Stamp); ok {
			before = next.ID
		}
		return map[string]any{"msg": toWire(m, c.Settled(req.Room)), "before": before}, nil

	case "history":
		before, err := parseStamp(req.Before)
		if err != nil {
			return nil, err
		}
		if before.IsZero() {
			// The newest page: the chat server checks that the user is a
			// member, and the view catches up first.
			if err := c.Sync(ctx, req.Room); err != nil {
				return nil, err
			}
		} else if !slices.Contains(c.Rooms(), req.Room) {
			return nil, centralapi.ErrNotMember
		}
		page := c.Page(req.Room, before, h.cfg.PageSize)
		settled := c.Settled(req.Room)
		msgs := make([]wireMessage, len(page))
		for i, m := range page {
			msgs[i] = toWire(m, settled)
		}
		return map[string]any{"room": req.Room, "messages": msgs, "more": len(page) == h.cfg.PageSize, "settled": fmt.Sprint(settled)}, nil

	case "create", "join":
		var err error
		if req.Op == "create" {
			_, err = c.CreateRoom(ctx, req.Room)
		} else {
			_, err = c.JoinRoom(ctx, req.Room)
		}
		if err != nil {
			return nil, err
		}
		s.push(s.roomsPush(c))
		return map[string]any{"room": req.Room}, nil

	case "leave":
		if err := c.LeaveRoom(ctx, req.Room); err != nil {
			return nil, err
		}
		s.push(s.roomsPush(c))
		return map[string]any{"room": req.Room}, nil

	case "direct":
		room, err := c.Direct(ctx, req.User)
		if err != nil {
			return nil, err
		}
		s.push(s.roomsPush(c))
		return map[string]any{"room": room}, nil

	case "search":
		r, err := h.cfg.Cluster.SearchUsers(ctx, centralapi.SearchArgs{Prefix: req.Prefix, Limit: searchLimit + 1})
		if err != nil {
			return nil, err
		}
		users := slices.DeleteFunc(r.Users, func(u string) bool { return u == c.User() })
		return map[string]any{"users": users[:min(len(users), searchLimit)]}, nil

	case "who":
		info, err := c.Who(ctx, req.Room)
		if err != nil {
			return nil, err
		}
		type member struct {
			User    string   `json:"user"`
			Online  bool     `json:"online"`
			Servers []string `json:"servers"`
		}
		members := make([]member, len(info.Members))
		for i, m := range info.Members {
			members[i] = member{User: m.User, Online: len(m.Servers) > 0, Servers: m.Servers}
		}
		return map[string]any{"room": info.Name, "direct": info.Direct, "members": members}, nil

	case "rooms":
		list, err := c.ListRooms(ctx)
		if err != nil {
			return nil, err
		}
		type public struct {
			Name    string `json:"name"`
			Members int    `json:"members"`
			Joined  bool   `json:"joined"`
		}
		var pub []public
		for _, r := range list.Rooms {
			if !r.Direct {
				pub = append(pub, public{Name: r.Name, Members: r.Members, Joined: r.Joined})
			}
		}
		return map[string]any{"rooms": s.rooms(c), "public": pub}, nil

	case "read":
		st, err := parseStamp(req.Stamp)
		if err != nil {
			return nil, err
		}
		s.read(req.Room, st)
		return nil, nil

	case "voice-who":
		return h.runVoice(ctx, s, nil, req)
	}
	return nil, fmt.Errorf("unknown op %q: %w", req.Op, ErrBadRequest)
}
