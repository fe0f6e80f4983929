package central

import (
	"context"
	"fmt"

	"github.com/distchat/distchat/central/centralapi"
	"github.com/distchat/distchat/central/kv"
)

// IssueResetCode implements [Cluster]: for a user who lost both the
// password and the recovery code, the operator (proving the cluster
// secret: distchat admin reset-password) gets a fresh recovery code that
// replaces the old one. It works like any recovery code, once, with
// ResetPassword (the web port's forgot-password page). Nothing else
// changes until it is used: the password still works and no session ends.
func (c *Central) IssueResetCode(ctx context.Context, a centralapi.UserArgs) (centralapi.ResetReply, error) {
	if err := checkUser(a.User); err != nil {
		return centralapi.ResetReply{}, fmt.Errorf("issue reset code: %w", err)
	}
	code, err := c.newRecoveryCode()
	if err != nil {
		return centralapi.ResetReply{}, err
	}
	norm, _ := normalizeRecoveryCode(code)
	hash, err := c.hashSecret(ctx, norm)
	if err != nil {
		return centralapi.ResetReply{}, fmt.Errorf("issue reset code for %s: %w", q(a.User), err)
	}
	if err := ctx.Err(); err != nil {
		return centralapi.ResetReply{}, fmt.Errorf("issue reset code for %s: %w", q(a.User), err)
	}
	_, err = kv.Update(ctx, c.store, func(tx *kv.Tx) error {
		u, ok, err := getUser(tx, a.User)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("user %s: %w", q(a.User), centralapi.ErrNoSuchUser)
		}
		u.RecoveryHash = hash
		return putUser(tx, a.User, u)
	})
	if err != nil {
		return centralapi.ResetReply{}, fmt.Errorf("issue reset code: %w", err)
	}
	c.log.Info("reset code issued by the operator", "user", a.User)
	return centralapi.ResetReply{RecoveryCode: code}, nil
}
