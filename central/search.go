package central

import (
	"context"
	"fmt"

	"github.com/distchat/distchat/central/centralapi"
)

// SearchUsers implements [Cluster]: it lists, in name order, the users
// whose names start with args.Prefix, at most args.Limit of them (or
// centralapi.MaxSearchResults). An empty prefix lists the first users.
func (c *Central) SearchUsers(ctx context.Context, a centralapi.SearchArgs) (centralapi.SearchReply, error) {
	limit := a.Limit
	if limit <= 0 || limit > centralapi.MaxSearchResults {
		limit = centralapi.MaxSearchResults
	}
	kvs, _, err := c.store.Range(ctx, prefixUsers+a.Prefix, limit)
	if err != nil {
		return centralapi.SearchReply{}, fmt.Errorf("search users: %w", err)
	}
	var users []string
	for _, p := range kvs {
		users = append(users, p.Key[len(prefixUsers):])
	}
	return centralapi.SearchReply{Users: users}, nil
}
