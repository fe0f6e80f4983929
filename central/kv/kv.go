// Package kv is the narrow key-value interface central keeps its state in,
// shaped like etcd's: keys with revisions, prefix ranges, transactions that
// compare revisions before they write, leases with a TTL, and prefix
// watches from a revision. Two implementations satisfy it: boltkv (one
// bbolt file, the default, which the simulator runs) and etcdkv (an etcd
// cluster, so that several central front-ends share one state). The
// conformance suite in kvtest runs the same tests against both.
//
// The store has one revision counter. Every transaction that writes
// something raises it by one, and every key remembers the revision that
// created it and the one that last changed it. A transaction that must not
// overwrite a concurrent change compares the ModRev it read (ModRev 0: the
// key is absent) and writes only if nothing changed: this is how
// create-if-absent and read-modify-write work without locks (see Update).
package kv

import (
	"context"
	"errors"
	"time"
)

// Errors of the stores. Implementations wrap them, so test with errors.Is.
var (
	// ErrLeaseNotFound: the lease does not exist (never granted, revoked,
	// or expired).
	ErrLeaseNotFound = errors.New("kv: lease not found")
	// ErrCompacted: a watch asked for a revision older than the store
	// keeps history for.
	ErrCompacted = errors.New("kv: revision compacted")
	// ErrTooManyOps: a transaction has more than MaxTxnOps operations.
	ErrTooManyOps = errors.New("kv: too many operations in one transaction")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("kv: store closed")
	// ErrConflict: Update gave up after MaxAttempts conflicting attempts.
	ErrConflict = errors.New("kv: transaction kept conflicting")
)

// MaxTxnOps is the most operations (compares and writes, each counted on
// its own) one transaction may have: etcd's default (--max-txn-ops 128).
// Both stores enforce it, so that code that works on bbolt works on etcd.
const MaxTxnOps = 128

// LeaseID names a lease; 0 is no lease.
type LeaseID int64

// KeyValue is one key as stored.
type KeyValue struct {
	Key   string
	Value []byte
	// CreateRev is the revision that created the key, ModRev the one that
	// last wrote it.
	CreateRev, ModRev int64
	// Lease is the lease the key is bound to (0: none): the key is deleted
	// when the lease ends.
	Lease LeaseID
}

// Cmp is a condition of a transaction: the key's ModRev equals ModRev;
// ModRev 0 means the key is absent.
type Cmp struct {
	Key    string
	ModRev int64
}

// Absent is the condition that key does not exist.
func Absent(key string) Cmp { return Cmp{Key: key} }

// Unchanged is the condition that kv's key was not written since kv was
// read (or, for a KeyValue of an absent key, that it is still absent).
func Unchanged(kv KeyValue) Cmp { return Cmp{Key: kv.Key, ModRev: kv.ModRev} }

// OpKind is what an Op does.
type OpKind int

// The kinds of Op.
const (
	OpPut OpKind = iota + 1
	OpDelete
)

// Op is a write in a transaction.
type Op struct {
	Kind  OpKind
	Key   string
	Value []byte  // OpPut only
	Lease LeaseID // OpPut only; 0: none
}

// Put is the Op that sets key to value (with no lease).
func Put(key string, value []byte) Op { return Op{Kind: OpPut, Key: key, Value: value} }

// PutLease is the Op that sets key to value, bound to lease.
func PutLease(key string, value []byte, lease LeaseID) Op {
	return Op{Kind: OpPut, Key: key, Value: value, Lease: lease}
}

// Delete is the Op that deletes key (nothing if it is absent).
func Delete(key string) Op { return Op{Kind: OpDelete, Key: key} }

// EventType is what a watch event reports.
type EventType int

// The kinds of Event.
const (
	EventPut EventType = iota + 1
	EventDelete
)

// Event is one change seen by a watch. For a delete, KV holds the key and,
// in ModRev, the revision of the deletion.
type Event struct {
	Type EventType
	KV   KeyValue
}

// WatchResponse is a batch of events of one revision, or an error; after
// an error the channel is closed.
type WatchResponse struct {
	Events []Event
	Err    error
}

// Store is central's state: a sorted key space with revisions, leases and
// watches. All methods are safe for concurrent use.
type Store interface {
	// Get returns key's value; ok is false if it is absent.
	Get(ctx context.Context, key string) (kv KeyValue, ok bool, err error)
	// Range returns the keys starting with prefix, in key order, at most
	// limit of them (0: all), and the store's revision they were read at.
	Range(ctx context.Context, prefix string, limit int) (kvs []KeyValue, rev int64, err error)
	// Txn writes ops, all or none, if every condition in cmps holds; ok
	// reports whether they did, and rev is the store's revision after.
	// A transaction that writes gets one new revision for all its ops.
	// More than MaxTxnOps cmps and ops together fail with ErrTooManyOps.
	Txn(ctx context.Context, cmps []Cmp, ops []Op) (ok bool, rev int64, err error)
	// Grant creates a lease that ends ttl from now unless kept alive.
	// etcd counts in whole seconds, rounding a ttl up.
	Grant(ctx context.Context, ttl time.Duration) (LeaseID, error)
	// KeepAlive renews a lease for its full ttl; ErrLeaseNotFound if it
	// has ended.
	KeepAlive(ctx context.Context, id LeaseID) error
	// Revoke ends a lease now, deleting its keys; ErrLeaseNotFound if it
	// has ended.
	Revoke(ctx context.Context, id LeaseID) error
	// Watch reports, in revision order, every change to the keys starting
	// with prefix from revision fromRev on (0: from the next one), one
	// response per revision. The channel is closed when ctx ends; when the
	// watch fails instead (ErrCompacted, ErrClosed, a lost connection), a
	// response with Err comes last.
	Watch(ctx context.Context, prefix string, fromRev int64) <-chan WatchResponse
	// Close releases the store.
	Close() error
}

// Reader is implemented by a Store that can make several reads in one
// consistent and cheap step (boltkv: one bbolt read transaction). View
// uses it when the store has it; etcdkv does not, and View reads it key by
// key.
type Reader interface {
	// Read runs fn on a Snapshot of the store as of one revision.
	Read(ctx context.Context, fn func(Snapshot) error) error
}

// Snapshot is a store as of one revision, valid only while Reader.Read's
// fn runs: the bytes it hands out must be copied to be kept.
type Snapshot interface {
	// Get returns key's value; ok is false if it is absent.
	Get(key string) (value []byte, ok bool, err error)
	// Keys calls fn with each key starting with prefix, in key order,
	// until fn returns an error, which Keys returns.
	Keys(prefix string, fn func(key []byte) error) error
}
