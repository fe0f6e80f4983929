package server

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/distchat/distchat/rmi"
	"github.com/distchat/distchat/server/chatapi"
	bolt "go.etcd.io/bbolt"
)

// writeBoltFile writes a server.db as the older versions laid it out.
func writeBoltFile(t *testing.T, dir, name string, msgs []chatapi.Message) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, boltFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket(bucketMeta)
		rooms, _ := tx.CreateBucket(bucketRooms)
		cursor, _ := tx.CreateBucket(bucketCursor)
		meta.Put([]byte("name"), []byte(name))
		meta.Put([]byte("last"), binary.BigEndian.AppendUint64(nil, 99))
		meta.Put([]byte("known"), []byte("a\nb"))
		cursor.Put([]byte("b\x00r"), binary.BigEndian.AppendUint64(nil, 1))
		for _, m := range msgs {
			room, err := rooms.CreateBucketIfNotExists([]byte(m.Room))
			if err != nil {
				return err
			}
			logb, err := room.CreateBucketIfNotExists([]byte("log"))
			if err != nil {
				return err
			}
			v, err := rmi.Marshal(m)
			if err != nil {
				return err
			}
			key := binary.BigEndian.AppendUint64(nil, uint64(m.Stamp.Time)^(1<<63))
			key = append(append(append(key, m.Stamp.Server...), 0), binary.BigEndian.AppendUint64(nil, m.Stamp.Seq)...)
			if err := logb.Put(key, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A data directory of an older version (server.db, bbolt) is converted
// into the log the first time it is opened, and its file kept aside.
func TestOpenConvertsTheBboltFile(t *testing.T) {
	dir := t.TempDir()
	msgs := []chatapi.Message{testMsg("a", 1, 10), testMsg("b", 1, 15), testMsg("a", 2, 20)}
	writeBoltFile(t, dir, "a", msgs)
	st, err := openStore(dir, "a", true)
	if err != nil {
		t.Fatal(err)
	}
	check := func(st *store) {
		t.Helper()
		got, _, err := st.scan("r", nil, 10)
		if err != nil || !reflect.DeepEqual(got, msgs) {
			t.Fatalf("converted history %v, %v; want %v", got, err, msgs)
		}
		ls, _ := st.load("a")
		if ls.last != 99 || !reflect.DeepEqual(ls.known, []string{"a", "b"}) || ls.cursors["b"]["r"] != 1 || ls.rooms["r"].ownSeq != 2 {
			t.Fatalf("converted state: last %d, known %v, cursors %v, rooms %+v", ls.last, ls.known, ls.cursors, ls.rooms["r"])
		}
		if rec, ok, _ := st.lookupDedupe("u", "a-2"); !ok || rec.Stamp != msgs[2].Stamp {
			t.Fatalf("converted dedupe: %+v, %v", rec, ok)
		}
	}
	check(st)
	if _, err := os.Stat(filepath.Join(dir, boltFile+".migrated")); err != nil {
		t.Fatalf("the old file is not kept aside: %v", err)
	}
	// Once converted, the log is what opens.
	check(reopen(t, st, dir))

	other := t.TempDir()
	writeBoltFile(t, other, "b", nil)
	if _, err := openStore(other, "a", true); err == nil || !strings.Contains(err.Error(), `belongs to chat server "b"`) {
		t.Fatalf("convert b's file as a: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, boltFile)); err != nil {
		t.Fatalf("a file that could not be converted was moved: %v", err)
	}
}
