package client

import (
	"hash/maphash"

	"github.com/distchat/distchat/server/chatapi"
)

// postKey identifies a post across retries: its author and client-chosen id.
type postKey struct{ from, id string }

// postIndex tells whether a view may already show a post. It holds a
// 64-bit hash of the key of every post of the room's history, and nothing
// else: 8 bytes a slot, no pointers for the garbage collector. A hash it
// has not seen means a new post, as it does for nearly every message. A
// hash it has seen (a retry stamped by a second server, or, about once in
// 2^64, two posts whose hashes collide) is settled by looking for the
// post in the log, newest first: a retry's first copy is almost always
// among the latest messages. So a collision costs a search of the log,
// never a wrong answer.
//
// (It used to map each hash to the stamp the post is shown at, with an
// exact map for colliding posts: 32 bytes an entry, and the one structure
// a view's memory grew by fastest. Then it was a Go map of hashes, whose
// lookups and growth were a third of BenchmarkViewDeliver; it is now a
// hashSet.)
type postIndex struct {
	seed    maphash.Seed
	collide func(postKey) uint64 // replaces the hash in a test, to make posts collide
	seen    hashSet
}

func newPostIndex() postIndex {
	return postIndex{seed: maphash.MakeSeed()}
}

func (p *postIndex) hash(k postKey) uint64 {
	if p.collide != nil {
		return p.collide(k)
	}
	return maphash.Comparable(p.seed, k)
}

// addNew records that a post whose key hashes to h is shown, and reports
// whether no post with that hash was: then the post is surely new. If it
// reports false, shownAt tells.
func (p *postIndex) addNew(h uint64) bool { return p.seen.add(h) }

// shownAt returns the stamp at which post k is shown in log, if it is.
func (p *postIndex) shownAt(k postKey, log *sortedLog) (chatapi.Stamp, bool) {
	return log.findPost(k.from, k.id)
}

// hashSet is a set of 64-bit hashes, for postIndex: one slice of slots,
// open addressing with linear probing, never more than half full (a
// lookup of a hash not in it then reads about two slots, mostly in one
// cache line), doubled when it would be. Hashes are uniform, so a
// hash's low bits are its slot. An empty slot holds 0, so the hash 0 is
// kept as 1; the set answers "maybe seen" for postIndex, which confirms
// a hit in the log, so two hashes taken as one cost a search, no more.
//
// Why not a Go map: a map[uint64]struct{} keeps a control byte per slot
// besides the key, fills its groups to 7/8 before it grows, and grows a
// table at a time; in BenchmarkViewDeliver its lookups and growth were a
// third of the CPU (ctrlGroup.matchH2 and setEmpty).
type hashSet struct {
	slots []uint64 // len is 0 or a power of two
	n     int      // slots in use
}

// add adds h and reports whether it was not in the set.
func (s *hashSet) add(h uint64) bool {
	if 2*(s.n+1) > len(s.slots) {
		s.grow()
	}
	if h == 0 {
		h = 1
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return false
		case 0:
			s.slots[i] = h
			s.n++
			return true
		}
	}
}

// grow doubles the slots (to 64 at first) and puts every hash back.
//
// The new slots are written (cleared) before they are read: a large
// slice can be fresh memory from the kernel, whose pages a first read
// maps to the shared zero page, so that the first write then faults a
// second time and flushes the page from every CPU's TLB (an IPI each on
// a VM). In distchat bench's load process the hash sets' were about a
// third of such double faults in a run.
func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(64, 2*len(old)))
	clear(s.slots)
	s.n = 0
	for _, h := range old {
		if h != 0 {
			s.add(h)
		}
	}
}
