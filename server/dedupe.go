package server

import (
	"hash/maphash"

	"github.com/distchat/distchat/server/chatapi"
	"github.com/distchat/distchat/server/seglog"
)

// dedupeIndex finds a post first stamped here by its sender and post ID,
// so that a retry is answered with the post's first stamp. It covers every
// post this server ever stamped, so it keeps no strings: a 64-bit hash of
// (sender, ID) maps to the post's place in the log, 24 bytes a post and
// nothing for the garbage collector to trace. A hash found is confirmed by
// reading the post back, which only a retry (rare) or a collision (about
// once in 2^64) does; a post whose hash another post already has is kept
// in a small exact map instead, so no post is ever taken for another.
//
// (It used to map the string sender+"\x00"+ID to the post's room and
// stamp: three strings and about 80 bytes a post.)
type dedupeIndex struct {
	seed    maphash.Seed
	collide func(postKey) uint64 // replaces the hash in a test, to make posts collide
	byHash  map[uint64]seglog.Pos
	clash   map[postKey]seglog.Pos // posts whose hash another post in byHash has
}

// postKey names a post by its sender and the ID its client chose.
type postKey struct{ from, id string }

func newDedupeIndex() dedupeIndex {
	return dedupeIndex{seed: maphash.MakeSeed(), byHash: map[uint64]seglog.Pos{}}
}

func (d *dedupeIndex) hash(k postKey) uint64 {
	if d.collide != nil {
		return d.collide(k)
	}
	return maphash.Comparable(d.seed, k)
}

// add records that the post k lies at p.
func (d *dedupeIndex) add(k postKey, p seglog.Pos) {
	h := d.hash(k)
	if _, taken := d.byHash[h]; !taken {
		d.byHash[h] = p
		return
	}
	if d.clash == nil {
		d.clash = map[postKey]seglog.Pos{}
	}
	d.clash[k] = p
}

// find returns where the post k may lie, and whether that is certain (it
// was found by its key, not its hash).
func (d *dedupeIndex) find(k postKey) (p seglog.Pos, ok, certain bool) {
	if p, ok := d.clash[k]; ok {
		return p, true, true
	}
	p, ok = d.byHash[d.hash(k)]
	return p, ok, false
}

// lookupDedupe finds a post user already made here with id.
func (st *store) lookupDedupe(user, id string) (dedupeRec, bool, error) {
	k := postKey{user, id}
	st.mu.RLock()
	p, ok, certain := st.dedupe.find(k)
	st.mu.RUnlock()
	if !ok {
		return dedupeRec{}, false, nil
	}
	b, err := st.log.Read(p)
	if err != nil {
		return dedupeRec{}, false, err
	}
	m, err := decodeMessage(b)
	if err != nil {
		return dedupeRec{}, false, err
	}
	if !certain && (m.From != user || m.ID != id) {
		return dedupeRec{}, false, nil // another post with the same hash
	}
	return dedupeRec{Room: m.Room, Stamp: m.Stamp}, true, nil
}

// dedupeRec is a post first stamped here, found by its sender and ID.
type dedupeRec struct {
	Room  string
	Stamp chatapi.Stamp
}
