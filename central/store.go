package central

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The bbolt file's layout. Composite keys join two parts with sep (a NUL
// byte). User and room names cannot contain it; session keys (raw SHA-256
// digests) can, so they only ever come last, after a user name.
//
//	meta           "schema" -> schemaVersion
//	users          user -> userRecord (JSON)
//	sessions       sha256(token) -> sessionRecord (JSON)
//	user_sessions  user sep sha256(token) -> ""
//	rooms          room -> roomRecord (JSON)
//	room_members   room sep user -> ""
//	user_rooms     user sep room -> ""
var (
	bucketMeta         = []byte("meta")
	bucketUsers        = []byte("users")
	bucketSessions     = []byte("sessions")
	bucketUserSessions = []byte("user_sessions")
	bucketRooms        = []byte("rooms")
	bucketRoomMembers  = []byte("room_members")
	bucketUserRooms    = []byte("user_rooms")
)

const (
	sep           = "\x00"
	schemaKey     = "schema"
	schemaVersion = "1"
)

// userRecord is an account. Only hashes of the secrets are kept.
type userRecord struct {
	PasswordHash []byte    `json:"password_hash"`
	RecoveryHash []byte    `json:"recovery_hash"`
	Created      time.Time `json:"created"`
}

// sessionRecord is a session, stored under the SHA-256 of its token.
type sessionRecord struct {
	User    string    `json:"user"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// roomRecord is a room, stored under its name.
type roomRecord struct {
	Direct  bool      `json:"direct,omitempty"`
	Creator string    `json:"creator"`
	Created time.Time `json:"created"`
}

// initSchema creates the buckets and checks the schema version.
func initSchema(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketUsers, bucketSessions, bucketUserSessions,
			bucketRooms, bucketRoomMembers, bucketUserRooms} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get([]byte(schemaKey)); {
		case v == nil:
			return meta.Put([]byte(schemaKey), []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("database schema version %q, want %q", v, schemaVersion)
		}
		return nil
	})
}

func getJSON(tx *bolt.Tx, bucket []byte, key string, v any) (bool, error) {
	raw := tx.Bucket(bucket).Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("corrupt record in %s: %w", bucket, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

func getUser(tx *bolt.Tx, name string) (userRecord, bool, error) {
	var u userRecord
	ok, err := getJSON(tx, bucketUsers, name, &u)
	return u, ok, err
}

func getSession(tx *bolt.Tx, key string) (sessionRecord, bool, error) {
	var s sessionRecord
	ok, err := getJSON(tx, bucketSessions, key, &s)
	return s, ok, err
}

func putSession(tx *bolt.Tx, key string, s sessionRecord) error {
	if err := putJSON(tx.Bucket(bucketSessions), key, s); err != nil {
		return err
	}
	return tx.Bucket(bucketUserSessions).Put([]byte(s.User+sep+key), nil)
}

func deleteSession(tx *bolt.Tx, key, user string) error {
	if err := tx.Bucket(bucketSessions).Delete([]byte(key)); err != nil {
		return err
	}
	return tx.Bucket(bucketUserSessions).Delete([]byte(user + sep + key))
}

// userSessionKeys lists the keys of a user's sessions.
func userSessionKeys(tx *bolt.Tx, user string) []string {
	var keys []string
	prefix := []byte(user + sep)
	c := tx.Bucket(bucketUserSessions).Cursor()
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, string(k[len(prefix):]))
	}
	return keys
}

func getRoom(tx *bolt.Tx, name string) (roomRecord, bool, error) {
	var r roomRecord
	ok, err := getJSON(tx, bucketRooms, name, &r)
	return r, ok, err
}

func isMember(tx *bolt.Tx, room, user string) bool {
	return tx.Bucket(bucketRoomMembers).Get([]byte(room+sep+user)) != nil
}

func addMember(tx *bolt.Tx, room, user string) error {
	if err := tx.Bucket(bucketRoomMembers).Put([]byte(room+sep+user), nil); err != nil {
		return err
	}
	return tx.Bucket(bucketUserRooms).Put([]byte(user+sep+room), nil)
}

func removeMember(tx *bolt.Tx, room, user string) error {
	if err := tx.Bucket(bucketRoomMembers).Delete([]byte(room + sep + user)); err != nil {
		return err
	}
	return tx.Bucket(bucketUserRooms).Delete([]byte(user + sep + room))
}

// members lists a room's members, sorted (bbolt keeps keys in byte order).
func members(tx *bolt.Tx, room string) []string {
	return scanSuffixes(tx.Bucket(bucketRoomMembers), room)
}

// userRooms lists the rooms a user is a member of, sorted.
func userRooms(tx *bolt.Tx, user string) []string {
	return scanSuffixes(tx.Bucket(bucketUserRooms), user)
}

func scanSuffixes(b *bolt.Bucket, head string) []string {
	var out []string
	prefix := []byte(head + sep)
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		out = append(out, string(k[len(prefix):]))
	}
	return out
}

// memberCounts returns the number of members of every room with any.
func memberCounts(tx *bolt.Tx) map[string]int {
	counts := map[string]int{}
	_ = tx.Bucket(bucketRoomMembers).ForEach(func(k, _ []byte) error {
		if room, _, ok := strings.Cut(string(k), sep); ok {
			counts[room]++
		}
		return nil
	})
	return counts
}

func hasPrefix(b, prefix []byte) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == string(prefix)
}
