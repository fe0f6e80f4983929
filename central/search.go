package central

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

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
	var users []string
	err := c.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketUsers).Cursor()
		prefix := []byte(a.Prefix)
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(users) < limit; k, _ = cur.Next() {
			users = append(users, string(k))
		}
		return nil
	})
	if err != nil {
		return centralapi.SearchReply{}, fmt.Errorf("search users: %w", err)
	}
	return centralapi.SearchReply{Users: users}, nil
}
