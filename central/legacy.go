package central

import (
	"encoding/hex"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// The layout of central.db before the kv store (schema 1): one bbolt bucket
// per kind of record, composite keys joined by a NUL byte, sessions under
// the raw SHA-256 of their token.
//
//	meta           "schema" -> "1"
//	users          user -> userRecord (JSON)
//	sessions       sha256(token) -> sessionRecord (JSON)
//	user_sessions  user NUL sha256(token) -> ""
//	rooms          room -> roomRecord (JSON)
//	room_members   room NUL user -> ""
//	user_rooms     user NUL room -> ""
//
// The records' JSON is unchanged, so carrying a file over renames the keys
// and copies the values. It happens once, when a data directory of an
// older distchat is first opened, inside the transaction that lays out the
// kv buckets: a crash leaves the file as it was.
const legacySchema = "1"

// legacyBucket says how one schema-1 bucket's keys become kv keys.
type legacyBucket struct {
	name string
	key  func(k []byte) (string, error)
}

var legacyBuckets = []legacyBucket{
	{"users", plainKey(prefixUsers)},
	{"sessions", func(k []byte) (string, error) { return prefixSessions + hex.EncodeToString(k), nil }},
	{"user_sessions", func(k []byte) (string, error) {
		user, raw, ok := strings.Cut(string(k), "\x00")
		if !ok {
			return "", fmt.Errorf("user_sessions key %q has no separator", k)
		}
		return prefixUserSessions + user + "/" + hex.EncodeToString([]byte(raw)), nil
	}},
	{"rooms", plainKey(prefixRooms)},
	{"room_members", pairKey(prefixRoomMembers)},
	{"user_rooms", pairKey(prefixUserRooms)},
}

func plainKey(prefix string) func([]byte) (string, error) {
	return func(k []byte) (string, error) { return prefix + string(k), nil }
}

func pairKey(prefix string) func([]byte) (string, error) {
	return func(k []byte) (string, error) {
		a, b, ok := strings.Cut(string(k), "\x00")
		if !ok {
			return "", fmt.Errorf("key %q has no separator", k)
		}
		return prefix + a + "/" + b, nil
	}
}

// carryLegacy is boltkv's Options.Legacy: it puts every record of a
// schema-1 file into the kv store and deletes the old buckets. A new,
// empty file has none of them. Either way it leaves bucket meta saying
// schema 2, so that an older distchat refuses the file ("database schema
// version") instead of taking it for an empty one.
func carryLegacy(tx *bolt.Tx, put func(key string, value []byte) error) error {
	meta, err := tx.CreateBucketIfNotExists([]byte("meta"))
	if err != nil {
		return err
	}
	switch v := string(meta.Get([]byte("schema"))); v {
	case "":
		return meta.Put([]byte("schema"), []byte(schemaVersion))
	case legacySchema:
	default:
		return fmt.Errorf("database schema version %q, want %q", v, legacySchema)
	}
	for _, lb := range legacyBuckets {
		b := tx.Bucket([]byte(lb.name))
		if b == nil {
			return fmt.Errorf("schema %s file without bucket %s", legacySchema, lb.name)
		}
		err := b.ForEach(func(k, v []byte) error {
			key, err := lb.key(k)
			if err != nil {
				return err
			}
			return put(key, v)
		})
		if err != nil {
			return fmt.Errorf("bucket %s: %w", lb.name, err)
		}
		if err := tx.DeleteBucket([]byte(lb.name)); err != nil {
			return err
		}
	}
	return meta.Put([]byte("schema"), []byte(schemaVersion))
}
