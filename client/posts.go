package client

import (
	"hash/maphash"

	"github.com/distchat/distchat/server/chatapi"
)

// postKey identifies a post across retries: its author and client-chosen id.
type postKey struct{ from, id string }

// postIndex remembers, for each post a view shows, the stamp it is shown
// at, so that a second copy of the post (a retry stamped by another
// server) is recognised. It holds every post of the room's history, so
// it is kept small and free of pointers: a 64-bit hash of the post's key
// maps to a compact stamp (no strings: the garbage collector does not
// scan it, and an entry is 32 bytes rather than 64). Two posts whose
// hashes collide are told apart by the message shown at the stamp, and
// the later one is kept in a small exact map instead, so the index never
// mistakes one post for another.
type postIndex struct {
	seed    maphash.Seed
	collide func(postKey) uint64 // replaces the hash in a test, to make posts collide
	byHash  map[uint64]compactStamp
	clash   map[postKey]chatapi.Stamp // posts whose hash another post in byHash has
	origins []string                  // origin server names, by compactStamp.origin
	number  map[string]uint32         // the inverse of origins
}

// compactStamp is a chatapi.Stamp with its server name numbered.
type compactStamp struct {
	time   int64
	seq    uint64
	origin uint32
}

func newPostIndex() postIndex {
	return postIndex{
		seed:   maphash.MakeSeed(),
		byHash: map[uint64]compactStamp{},
		number: map[string]uint32{},
	}
}

func (p *postIndex) hash(k postKey) uint64 {
	if p.collide != nil {
		return p.collide(k)
	}
	return maphash.Comparable(p.seed, k)
}

func (p *postIndex) compact(s chatapi.Stamp) compactStamp {
	n, ok := p.number[s.Server]
	if !ok {
		n = uint32(len(p.origins))
		p.origins = append(p.origins, s.Server)
		p.number[s.Server] = n
	}
	return compactStamp{time: s.Time, seq: s.Seq, origin: n}
}

func (p *postIndex) stamp(c compactStamp) chatapi.Stamp {
	return chatapi.Stamp{Time: c.time, Server: p.origins[c.origin], Seq: c.seq}
}

// shownAt returns the stamp at which post k is shown in log, if it is.
func (p *postIndex) shownAt(k postKey, log *sortedLog) (chatapi.Stamp, bool) {
	if s, ok := p.clash[k]; ok {
		return s, true
	}
	c, ok := p.byHash[p.hash(k)]
	if !ok {
		return chatapi.Stamp{}, false
	}
	s := p.stamp(c)
	if m, ok := log.find(s); ok && m.From == k.from && m.ID == k.id {
		return s, true
	}
	return chatapi.Stamp{}, false // another post with the same hash
}

// add records that post k, not shown until now, is shown at s.
func (p *postIndex) add(k postKey, s chatapi.Stamp) {
	h := p.hash(k)
	if _, taken := p.byHash[h]; taken {
		if p.clash == nil {
			p.clash = map[postKey]chatapi.Stamp{}
		}
		p.clash[k] = s
		return
	}
	p.byHash[h] = p.compact(s)
}

// move records that post k, shown until now, is shown at s instead.
func (p *postIndex) move(k postKey, s chatapi.Stamp) {
	if _, ok := p.clash[k]; ok {
		p.clash[k] = s
		return
	}
	p.byHash[p.hash(k)] = p.compact(s)
}
