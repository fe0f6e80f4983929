package client

import (
	"hash/maphash"

	"github.com/distchat/distchat/server/chatapi"
)

// postKey identifies a post across retries: its author and client-chosen id.
type postKey struct{ from, id string }

// postIndex tells whether a view may already show a post. It holds a
// 64-bit hash of the key of every post of the room's history, and nothing
// else: 8 bytes an entry, no pointers for the garbage collector, and a
// small map that stays in cache longer. A hash it has not seen means a new
// post, as it does for nearly every message. A hash it has seen (a retry
// stamped by a second server, or, about once in 2^64, two posts whose
// hashes collide) is settled by looking for the post in the log, newest
// first: a retry's first copy is almost always among the latest messages.
// So a collision costs a search of the log, never a wrong answer.
//
// (It used to map each hash to the stamp the post is shown at, with an
// exact map for colliding posts: 32 bytes an entry, and the one structure
// a view's memory grew by fastest.)
type postIndex struct {
	seed    maphash.Seed
	collide func(postKey) uint64 // replaces the hash in a test, to make posts collide
	seen    map[uint64]struct{}
}

func newPostIndex() postIndex {
	return postIndex{seed: maphash.MakeSeed(), seen: map[uint64]struct{}{}}
}

func (p *postIndex) hash(k postKey) uint64 {
	if p.collide != nil {
		return p.collide(k)
	}
	return maphash.Comparable(p.seed, k)
}

// shownAt returns the stamp at which post k, whose hash is h, is shown
// in log, if it is.
func (p *postIndex) shownAt(k postKey, h uint64, log *sortedLog) (chatapi.Stamp, bool) {
	if _, ok := p.seen[h]; !ok {
		return chatapi.Stamp{}, false
	}
	return log.findPost(k.from, k.id)
}

// add records that a post whose key hashes to h is shown.
func (p *postIndex) add(h uint64) { p.seen[h] = struct{}{} }
