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
	bolt "go.etcd.io/bbolt"
)

// Layout of the chat server's bbolt file:
//
//	meta                 "name" -> server name; "last" -> largest stamp time
//	                     (or watermark promised); "known" -> every chat
//	                     server ever seen, newline-separated
//	rooms/<room>/log     stampKey -> Message (msgpack), in stamp order
//	rooms/<room>/seq     origin 0 seq(8) -> stampKey
//	rooms/<room>/heads   origin -> contiguous head (8)
//	dedupe               user 0 id -> room 0 stampKey   (posts first stamped here)
//	cursor               dest 0 room -> last own seq dest acknowledged (the outbox)
//
// meta "probe" holds the last storage probe (storage.go): probeSize bytes
// of no meaning.
var (
	bucketMeta   = []byte("meta")
	bucketRooms  = []byte("rooms")
	bucketDedupe = []byte("dedupe")
	bucketCursor = []byte("cursor")
	bucketLog    = []byte("log")
	bucketSeq    = []byte("seq")
	bucketHeads  = []byte("heads")
	keyName      = []byte("name")
	keyLast      = []byte("last")
	keyKnown     = []byte("known")
	keyProbe     = []byte("probe")
)

// probeSize is how much a storage probe writes: four times the largest
// message, so that it needs fresh space in the file, as a post may. (An
// empty transaction rewrites only the meta pages, which a full disk still
// has room for.)
const probeSize = 4 * chatapi.MaxText

// store is the chat server's durable state.
type store struct {
	db *bolt.DB
	// fault, if set, fails write transactions (Config.WriteFault, for
	// tests).
	fault func() error
}

// roomDisk is what load returns per room.
type roomDisk struct {
	heads  map[string]uint64 // contiguous head per origin
	ownSeq uint64            // largest seq this server stamped in the room
}

// loadedState is everything Open needs from disk.
type loadedState struct {
	last    int64
	known   []string
	rooms   map[string]*roomDisk
	cursors map[string]map[string]uint64 // dest -> room -> acked own seq
}

func openStore(dir, name string, noSync bool) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dir, "server.db")
	// Like etcd: the freelist is not written on every commit (it is
	// rebuilt when the file is opened), which makes each commit cheaper.
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: 2 * time.Second, NoSync: noSync,
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketRooms, bucketDedupe, bucketCursor} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if old := meta.Get(keyName); old != nil && string(old) != name {
			return fmt.Errorf("%s belongs to chat server %q, not %q", path, old, name)
		}
		return meta.Put(keyName, []byte(name))
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &store{db: db}, nil
}

func (st *store) close() error { return st.db.Close() }

// load reads the counters the server keeps in memory.
func (st *store) load(self string) (*loadedState, error) {
	ls := &loadedState{rooms: map[string]*roomDisk{}, cursors: map[string]map[string]uint64{}}
	err := st.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyLast); len(v) == 8 {
			ls.last = int64(binary.BigEndian.Uint64(v))
		}
		if v := tx.Bucket(bucketMeta).Get(keyKnown); len(v) > 0 {
			ls.known = strings.Split(string(v), "\n")
		}
		err := tx.Bucket(bucketRooms).ForEachBucket(func(k []byte) error {
			rb := tx.Bucket(bucketRooms).Bucket(k)
			rd := &roomDisk{heads: map[string]uint64{}}
			if hb := rb.Bucket(bucketHeads); hb != nil {
				hb.ForEach(func(o, v []byte) error {
					rd.heads[string(o)] = binary.BigEndian.Uint64(v)
					return nil
				})
			}
			// Own seqs are stamped and committed in order, so they are
			// contiguous and our own head is our counter.
			rd.ownSeq = rd.heads[self]
			ls.rooms[string(k)] = rd
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketCursor).ForEach(func(k, v []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 || len(v) != 8 {
				return nil
			}
			dest, room := string(k[:i]), string(k[i+1:])
			if ls.cursors[dest] == nil {
				ls.cursors[dest] = map[string]uint64{}
			}
			ls.cursors[dest][room] = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	return ls, err
}

// stampKey encodes a stamp so that byte order is stamp order.
func stampKey(s chatapi.Stamp) []byte {
	k := make([]byte, 0, 17+len(s.Server))
	k = binary.BigEndian.AppendUint64(k, uint64(s.Time)^(1<<63))
	k = append(k, s.Server...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, s.Seq)
}

func seqKey(origin string, seq uint64) []byte {
	k := make([]byte, 0, len(origin)+9)
	k = append(k, origin...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// dedupeRec is a post first stamped here, found by its sender and ID.
type dedupeRec struct {
	Room  string
	Stamp chatapi.Stamp
}

// writeBatch is one group-committed transaction.
type writeBatch struct {
	msgs    []chatapi.Message // to store (duplicates by room/origin/seq are skipped)
	own     []bool            // msgs[i] was stamped here: record its dedupe entry
	cursors map[string]map[string]uint64
	last    int64
	// isNew[i] reports whether msgs[i] was stored (not a duplicate); set by commit.
	isNew []bool
	// heads are the rooms' contiguous heads after the commit, for rooms
	// that changed; set by commit.
	heads map[string]map[string]uint64
	// known, if not nil, replaces the list of known chat servers.
	known []string
}

// update runs fn in a write transaction. The fault hook, if set, is asked
// after fn; its error fails the transaction (it is rolled back), as a full
// disk fails the commit.
func (st *store) update(fn func(*bolt.Tx) error) error {
	return st.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if st.fault != nil {
			return st.fault()
		}
		return nil
	})
}

// probe tells whether writes work (again): it writes probeSize bytes under
// meta "probe", replacing the previous probe, in a transaction of its own.
func (st *store) probe() error {
	return st.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyProbe, make([]byte, probeSize))
	})
}

// commit writes b in one transaction (one fsync).
func (st *store) commit(b *writeBatch) error {
	b.isNew = make([]bool, len(b.msgs))
	b.heads = map[string]map[string]uint64{}
	return st.update(func(tx *bolt.Tx) error {
		rooms := tx.Bucket(bucketRooms)
		dd := tx.Bucket(bucketDedupe)
		type rb struct{ log, seq, heads *bolt.Bucket }
		open := map[string]rb{}
		for i, m := range b.msgs {
			r, ok := open[m.Room]
			if !ok {
				root, err := rooms.CreateBucketIfNotExists([]byte(m.Room))
				if err != nil {
					return err
				}
				for _, name := range [][]byte{bucketLog, bucketSeq, bucketHeads} {
					if _, err := root.CreateBucketIfNotExists(name); err != nil {
						return err
					}
				}
				r = rb{root.Bucket(bucketLog), root.Bucket(bucketSeq), root.Bucket(bucketHeads)}
				open[m.Room] = r
			}
			sk := seqKey(m.Stamp.Server, m.Stamp.Seq)
			if r.seq.Get(sk) != nil {
				continue
			}
			val, err := rmi.Marshal(m)
			if err != nil {
				return err
			}
			key := stampKey(m.Stamp)
			if err := r.log.Put(key, val); err != nil {
				return err
			}
			if err := r.seq.Put(sk, key); err != nil {
				return err
			}
			b.isNew[i] = true
			if b.own != nil && b.own[i] {
				rec, err := rmi.Marshal(dedupeRec{Room: m.Room, Stamp: m.Stamp})
				if err != nil {
					return err
				}
				if err := dd.Put(dedupeKey(m.From, m.ID), rec); err != nil {
					return err
				}
			}
			// Advance the origin's contiguous head past this and any
			// later seqs already present.
			origin := []byte(m.Stamp.Server)
			var head uint64
			if v := r.heads.Get(origin); len(v) == 8 {
				head = binary.BigEndian.Uint64(v)
			}
			if m.Stamp.Seq == head+1 {
				for head++; r.seq.Get(seqKey(m.Stamp.Server, head+1)) != nil; head++ {
				}
				if err := r.heads.Put(origin, u64(head)); err != nil {
					return err
				}
				if b.heads[m.Room] == nil {
					b.heads[m.Room] = map[string]uint64{}
				}
				b.heads[m.Room][m.Stamp.Server] = head
			}
		}
		cb := tx.Bucket(bucketCursor)
		for dest, rooms := range b.cursors {
			for room, seq := range rooms {
				if err := cb.Put(append(append([]byte(dest), 0), room...), u64(seq)); err != nil {
					return err
				}
			}
		}
		meta := tx.Bucket(bucketMeta)
		if b.known != nil {
			if err := meta.Put(keyKnown, []byte(strings.Join(b.known, "\n"))); err != nil {
				return err
			}
		}
		if v := meta.Get(keyLast); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) >= b.last {
			return nil
		}
		return meta.Put(keyLast, u64(uint64(b.last)))
	})
}

func dedupeKey(user, id string) []byte {
	return append(append([]byte(user), 0), id...)
}

// lookupDedupe finds a post user already made with id.
func (st *store) lookupDedupe(user, id string) (dedupeRec, bool, error) {
	var rec dedupeRec
	var found bool
	err := st.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDedupe).Get(dedupeKey(user, id))
		if v == nil {
			return nil
		}
		found = true
		return rmi.Unmarshal(v, &rec)
	})
	return rec, found, err
}

// errStop ends a bbolt iteration early.
var errStop = errors.New("stop")

// scan returns up to limit messages of room in stamp order whose seq is
// above have[origin] for their origin, and whether more remain.
func (st *store) scan(room string, have map[string]uint64, limit int) ([]chatapi.Message, bool, error) {
	var out []chatapi.Message
	more := false
	err := st.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketRooms).Bucket([]byte(room))
		if root == nil {
			return nil
		}
		logb, seqb := root.Bucket(bucketLog), root.Bucket(bucketSeq)
		// Start at the earliest stamp any origin is missing: for each
		// origin we hold, the first seq above have[origin].
		var start []byte
		// Every origin with a message here, read off the seq index one
		// origin at a time (not the heads, which miss an origin whose
		// first message is missing).
		origins := map[string]bool{}
		sc := seqb.Cursor()
		for k, _ := sc.First(); k != nil; {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				break
			}
			origins[string(k[:i])] = true
			k, _ = sc.Seek(append(append([]byte{}, k[:i]...), 1))
		}
		for o := range origins {
			prefix := append([]byte(o), 0)
			k, v := sc.Seek(seqKey(o, have[o]+1))
			if k == nil || !bytes.HasPrefix(k, prefix) {
				continue
			}
			if start == nil || bytes.Compare(v, start) < 0 {
				start = append([]byte{}, v...)
			}
		}
		if start == nil {
			return nil
		}
		c := logb.Cursor()
		for k, v := c.Seek(start); k != nil; k, v = c.Next() {
			origin, seq, ok := splitStampKey(k)
			if !ok || seq <= have[origin] {
				continue
			}
			if len(out) == limit {
				more = true
				return errStop
			}
			var m chatapi.Message
			if err := rmi.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("room %q: corrupt message: %w", room, err)
			}
			out = append(out, m)
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return out, more, err
}

// splitStampKey returns the origin and seq of a stampKey.
func splitStampKey(k []byte) (string, uint64, bool) {
	if len(k) < 17 || k[len(k)-9] != 0 {
		return "", 0, false
	}
	return string(k[8 : len(k)-9]), binary.BigEndian.Uint64(k[len(k)-8:]), true
}

// ownRange returns this server's own messages of room with seq in
// (from, to], at most limit of them, in seq order.
func (st *store) ownRange(room, self string, from, to uint64, limit int) ([]chatapi.Message, error) {
	var out []chatapi.Message
	err := st.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketRooms).Bucket([]byte(room))
		if root == nil {
			return nil
		}
		logb, seqb := root.Bucket(bucketLog), root.Bucket(bucketSeq)
		c := seqb.Cursor()
		prefix := append([]byte(self), 0)
		for k, v := c.Seek(seqKey(self, from+1)); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Next() {
			if binary.BigEndian.Uint64(k[len(prefix):]) > to {
				break
			}
			var m chatapi.Message
			if err := rmi.Unmarshal(logb.Get(v), &m); err != nil {
				return fmt.Errorf("room %q: corrupt message: %w", room, err)
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}
