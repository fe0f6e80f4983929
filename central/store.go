package central

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/distchat/distchat/central/kv"
)

// Central's key space in its kv.Store. Names cannot contain '/', so it
// separates the parts of a key; a session is stored under the hex of its
// key (the SHA-256 of its token), never under the token.
//
//	meta/schema              -> schemaVersion
//	users/USER               -> userRecord (JSON)
//	sessions/HEX             -> sessionRecord (JSON)
//	user_sessions/USER/HEX   -> ""
//	rooms/ROOM               -> roomRecord (JSON)
//	room_members/ROOM/USER   -> ""
//	user_rooms/USER/ROOM     -> ""
//
// The pairs room_members/user_rooms and sessions/user_sessions are always
// written together, in one transaction. legacy.go carries a data
// directory of the older bbolt layout (schema 1) over to this one.
const (
	keySchema          = "meta/schema"
	prefixUsers        = "users/"
	prefixSessions     = "sessions/"
	prefixUserSessions = "user_sessions/"
	prefixRooms        = "rooms/"
	prefixRoomMembers  = "room_members/"
	prefixUserRooms    = "user_rooms/"
	schemaVersion      = "2"
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

// initSchema records the schema version in an empty store and checks it
// in any other.
func initSchema(ctx context.Context, s kv.Store) error {
	_, err := kv.Update(ctx, s, func(tx *kv.Tx) error {
		v, ok, err := tx.Get(keySchema)
		switch {
		case err != nil:
			return err
		case !ok:
			tx.Put(keySchema, []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("state schema version %q, want %q", v, schemaVersion)
		}
		return nil
	})
	return err
}

func sessionHex(key string) string { return hex.EncodeToString([]byte(key)) }

// sessionRecordKey is the key of the session's record.
func sessionRecordKey(key string) string {
	return string(hex.AppendEncode([]byte(prefixSessions), []byte(key)))
}

func getJSON(tx *kv.Tx, key string, v any) (bool, error) {
	return tx.Use(key, func(raw []byte) error {
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("corrupt record %s: %w", key, err)
		}
		return nil
	})
}

func putJSON(tx *kv.Tx, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tx.Put(key, raw)
	return nil
}

func getUser(tx *kv.Tx, name string) (userRecord, bool, error) {
	var u userRecord
	ok, err := getJSON(tx, prefixUsers+name, &u)
	return u, ok, err
}

func putUser(tx *kv.Tx, name string, u userRecord) error {
	return putJSON(tx, prefixUsers+name, u)
}

// recordCache keeps JSON records decoded, each with the bytes it was
// decoded from, by key. Reading a record whose bytes are those cached
// takes the cached value instead of decoding the JSON again: a chat
// server checks the session of each client that connects, and looks a
// room up for the posts to it, and those records rarely change. Other
// bytes are decoded afresh, so what it returns is never stale, whoever
// wrote the store.
type recordCache[T any] struct {
	mu sync.Mutex
	m  map[string]cachedRecord[T]
}

// cachedRecord is a value and the bytes it was decoded from.
type cachedRecord[T any] struct {
	raw []byte
	v   T
}

// maxCachedRecords bounds each cache; past it, an arbitrary entry goes.
const maxCachedRecords = 8192

// get reads key's record in tx, decoding it only if its bytes are not
// those cached.
func (rc *recordCache[T]) get(tx *kv.Tx, key string) (v T, ok bool, err error) {
	ok, err = tx.Use(key, func(raw []byte) error {
		rc.mu.Lock()
		cached, hit := rc.m[key]
		rc.mu.Unlock()
		if hit && bytes.Equal(cached.raw, raw) {
			v = cached.v
			return nil
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("corrupt record %s: %w", key, err)
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.m == nil {
			rc.m = map[string]cachedRecord[T]{}
		}
		if _, in := rc.m[key]; !in && len(rc.m) >= maxCachedRecords {
			for k := range rc.m {
				delete(rc.m, k)
				break
			}
		}
		rc.m[key] = cachedRecord[T]{raw: bytes.Clone(raw), v: v}
		return nil
	})
	return v, ok, err
}

// forget drops key's cached record (it was deleted).
func (rc *recordCache[T]) forget(key string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	delete(rc.m, key)
}

func getSession(tx *kv.Tx, key string) (sessionRecord, bool, error) {
	var s sessionRecord
	ok, err := getJSON(tx, sessionRecordKey(key), &s)
	return s, ok, err
}

func putSession(tx *kv.Tx, key string, s sessionRecord) error {
	if err := putJSON(tx, sessionRecordKey(key), s); err != nil {
		return err
	}
	tx.Put(prefixUserSessions+s.User+"/"+sessionHex(key), nil)
	return nil
}

func deleteSession(tx *kv.Tx, key, user string) {
	tx.Delete(sessionRecordKey(key))
	tx.Delete(prefixUserSessions + user + "/" + sessionHex(key))
}

func getRoom(tx *kv.Tx, name string) (roomRecord, bool, error) {
	var r roomRecord
	ok, err := getJSON(tx, prefixRooms+name, &r)
	return r, ok, err
}

func putRoom(tx *kv.Tx, name string, r roomRecord) error {
	return putJSON(tx, prefixRooms+name, r)
}

func isMember(tx *kv.Tx, room, user string) (bool, error) {
	_, ok, err := tx.Get(prefixRoomMembers + room + "/" + user)
	return ok, err
}

func addMember(tx *kv.Tx, room, user string) {
	tx.Put(prefixRoomMembers+room+"/"+user, nil)
	tx.Put(prefixUserRooms+user+"/"+room, nil)
}

func removeMember(tx *kv.Tx, room, user string) {
	tx.Delete(prefixRoomMembers + room + "/" + user)
	tx.Delete(prefixUserRooms + user + "/" + room)
}

// userSessionKeys lists the keys of a user's sessions.
func userSessionKeys(ctx context.Context, s kv.Store, user string) ([]string, error) {
	hexes, err := suffixes(ctx, s, prefixUserSessions+user+"/")
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(hexes))
	for _, h := range hexes {
		raw, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("corrupt session key %s%s/%s: %w", prefixUserSessions, user, h, err)
		}
		keys = append(keys, string(raw))
	}
	return keys, nil
}

// members lists a room's members, sorted.
func members(ctx context.Context, s kv.Store, room string) ([]string, error) {
	return suffixes(ctx, s, memberPrefix(room))
}

// memberPrefix is the prefix of the keys that name room's members.
func memberPrefix(room string) string { return prefixRoomMembers + room + "/" }

// userRooms lists the rooms a user is a member of, sorted.
func userRooms(ctx context.Context, s kv.Store, user string) ([]string, error) {
	return suffixes(ctx, s, prefixUserRooms+user+"/")
}

// suffixes lists what follows prefix in the keys that start with it.
func suffixes(ctx context.Context, s kv.Store, prefix string) (out []string, err error) {
	err = kv.View(ctx, s, func(tx *kv.Tx) error {
		out, err = tx.Keys(prefix)
		return err
	})
	return out, err
}

// memberCounts returns the number of members of every room with any.
func memberCounts(ctx context.Context, s kv.Store) (map[string]int, error) {
	kvs, _, err := s.Range(ctx, prefixRoomMembers, 0)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, p := range kvs {
		if room, _, ok := strings.Cut(p.Key[len(prefixRoomMembers):], "/"); ok {
			counts[room]++
		}
	}
	return counts, nil
}
