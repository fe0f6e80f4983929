package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/seglog"
	bolt "go.etcd.io/bbolt"
)

// Older versions of the chat server kept their data in a bbolt file,
// DIR/server.db:
//
//	meta                 "name", "last" (8 bytes), "known" (newline-separated)
//	rooms/<room>/log     stamp key -> Message (msgpack), in stamp order
//	cursor               dest 0 room -> last own seq dest acknowledged (8 bytes)
//
// (and indexes, rebuilt here from the messages). Opening such a directory
// converts it once: the log is written beside it as log.migrating, renamed
// to log when complete, and server.db is then renamed server.db.migrated
// and kept as a backup. A crash at any point leaves either the old file
// alone, to convert again, or the complete log.

// boltFile is the older versions' data file.
const boltFile = "server.db"

// migrateBolt converts dir's server.db, if there is one, into dir's log.
func migrateBolt(dir, name string, noSync bool) error {
	old := filepath.Join(dir, boltFile)
	if _, err := os.Stat(old); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	logPath := filepath.Join(dir, logDir)
	if _, err := os.Stat(logPath); errors.Is(err, os.ErrNotExist) {
		tmp := logPath + ".migrating"
		if err := os.RemoveAll(tmp); err != nil {
			return fmt.Errorf("convert %s: %w", old, err)
		}
		if err := convertBolt(old, tmp, name, noSync); err != nil {
			return fmt.Errorf("convert %s: %w", old, err)
		}
		if err := os.Rename(tmp, logPath); err != nil {
			return fmt.Errorf("convert %s: %w", old, err)
		}
	}
	if err := os.Rename(old, old+".migrated"); err != nil {
		return fmt.Errorf("convert %s: %w", old, err)
	}
	return nil
}

// convertBolt writes the contents of the bbolt file at old as a new log
// in dir.
func convertBolt(old, dir, name string, noSync bool) error {
	db, err := bolt.Open(old, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	lg, err := seglog.Open(dir, seglog.Options{NoSync: noSync}, func(seglog.Pos, []byte) error { return nil })
	if err != nil {
		return err
	}
	defer lg.Close()
	return db.View(func(tx *bolt.Tx) error {
		meta, rooms, cursor := tx.Bucket(bucketMeta), tx.Bucket(bucketRooms), tx.Bucket(bucketCursor)
		if meta == nil || rooms == nil {
			return errors.New("not a chat server's data file")
		}
		if owner := string(meta.Get([]byte("name"))); owner != name {
			return fmt.Errorf("it belongs to chat server %q, not %q", owner, name)
		}
		recs := [][]byte{encodeName(name)}
		flush := func() error {
			_, err := lg.Append(recs)
			recs = recs[:0]
			return err
		}
		err := rooms.ForEachBucket(func(room []byte) error {
			logb := rooms.Bucket(room).Bucket([]byte("log"))
			if logb == nil {
				return nil
			}
			return logb.ForEach(func(_, v []byte) error {
				var m chatapi.Message
				if err := rmi.Unmarshal(v, &m); err != nil {
					return fmt.Errorf("room %q: %w", room, err)
				}
				if recs = append(recs, encodeMessage(m)); len(recs) == 1024 {
					return flush()
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		cursors := map[string]map[string]uint64{}
		if cursor != nil {
			cursor.ForEach(func(k, v []byte) error {
				dest, room, ok := bytes.Cut(k, []byte{0})
				if ok && len(v) == 8 {
					if cursors[string(dest)] == nil {
						cursors[string(dest)] = map[string]uint64{}
					}
					cursors[string(dest)][string(room)] = binary.BigEndian.Uint64(v)
				}
				return nil
			})
		}
		if len(cursors) > 0 {
			recs = append(recs, encodeCursors(cursors))
		}
		if v := meta.Get([]byte("known")); len(v) > 0 {
			recs = append(recs, encodeKnown(strings.Split(string(v), "\n")))
		}
		if v := meta.Get([]byte("last")); len(v) == 8 {
			recs = append(recs, encodeLast(int64(binary.BigEndian.Uint64(v))))
		}
		return flush()
	})
}

// The older versions' bucket names.
var (
	bucketMeta   = []byte("meta")
	bucketRooms  = []byte("rooms")
	bucketCursor = []byte("cursor")
)
