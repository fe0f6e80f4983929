// Package etcdkv is the kv.Store on an etcd cluster (client v3), so that
// several central front-ends share one state and chat-server leases are
// etcd leases. Every key lives under a prefix (Config.Prefix, by default
// "/distchat/"), so that one etcd cluster can serve other users too.
package etcdkv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/namespace"
	"go.uber.org/zap"

	"github.com/distchat/distchat/central/kv"
)

// DefaultPrefix is the key prefix of distchat's state in etcd.
const DefaultPrefix = "/distchat/"

// DefaultDialTimeout bounds the first contact with the cluster.
const DefaultDialTimeout = 5 * time.Second

// Config configures Open.
type Config struct {
	// Endpoints are the cluster's client URLs (https://host:2379, or
	// host:2379), at least one.
	Endpoints []string
	// TLS, if set, is used to reach the cluster (its CA; a client
	// certificate for etcd's --client-cert-auth).
	TLS *tls.Config
	// Username and Password authenticate to a cluster with auth enabled.
	Username, Password string
	// Prefix is where the keys live; empty means DefaultPrefix.
	Prefix string
	// DialTimeout bounds the first contact; zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration
}

// Store is a kv.Store on etcd.
type Store struct {
	cli     *clientv3.Client // closed by Close if Open made it
	kv      clientv3.KV
	lease   clientv3.Lease
	watcher clientv3.Watcher
}

// Open connects to the cluster and checks that it answers.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcdkv: no endpoints")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		TLS:         cfg.TLS,
		Username:    cfg.Username,
		Password:    cfg.Password,
		DialTimeout: cfg.DialTimeout,
		Logger:      zap.NewNop(),
		Context:     context.WithoutCancel(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("etcdkv: connect to %v: %w", cfg.Endpoints, err)
	}
	s := New(cli, cfg.Prefix)
	probe, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := s.kv.Get(probe, "probe", clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcdkv: cluster %v does not answer: %w", cfg.Endpoints, err)
	}
	return s, nil
}

// New is a Store on an open client, with its keys under prefix (empty:
// DefaultPrefix). Close then closes cli.
func New(cli *clientv3.Client, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{
		cli:     cli,
		kv:      namespace.NewKV(cli.KV, prefix),
		lease:   namespace.NewLease(cli.Lease, prefix),
		watcher: namespace.NewWatcher(cli.Watcher, prefix),
	}
}

// Close implements kv.Store: it closes the client.
func (s *Store) Close() error {
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("etcdkv: close: %w", err)
	}
	return nil
}

// Get implements kv.Store.
func (s *Store) Get(ctx context.Context, key string) (kv.KeyValue, bool, error) {
	resp, err := s.kv.Get(ctx, key)
	if err != nil {
		return kv.KeyValue{}, false, fmt.Errorf("etcdkv: get: %w", mapErr(err))
	}
	if len(resp.Kvs) == 0 {
		return kv.KeyValue{}, false, nil
	}
	return keyValue(resp.Kvs[0]), true, nil
}

// Range implements kv.Store.
func (s *Store) Range(ctx context.Context, prefix string, limit int) ([]kv.KeyValue, int64, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := s.kv.Get(ctx, prefix, opts...)
	if err != nil {
		return nil, 0, fmt.Errorf("etcdkv: range: %w", mapErr(err))
	}
	out := make([]kv.KeyValue, 0, len(resp.Kvs))
	for _, p := range resp.Kvs {
		out = append(out, keyValue(p))
	}
	return out, resp.Header.Revision, nil
}

// Txn implements kv.Store.
func (s *Store) Txn(ctx context.Context, cmps []kv.Cmp, ops []kv.Op) (bool, int64, error) {
	if len(cmps)+len(ops) > kv.MaxTxnOps {
		return false, 0, fmt.Errorf("etcdkv: %d compares and %d writes: %w", len(cmps), len(ops), kv.ErrTooManyOps)
	}
	ifs := make([]clientv3.Cmp, 0, len(cmps))
	for _, c := range cmps {
		ifs = append(ifs, clientv3.Compare(clientv3.ModRevision(c.Key), "=", c.ModRev))
	}
	thens := make([]clientv3.Op, 0, len(ops))
	for _, op := range ops {
		switch op.Kind {
		case kv.OpPut:
			thens = append(thens, clientv3.OpPut(op.Key, string(op.Value), clientv3.WithLease(clientv3.LeaseID(op.Lease))))
		case kv.OpDelete:
			thens = append(thens, clientv3.OpDelete(op.Key))
		default:
			return false, 0, fmt.Errorf("etcdkv: key %q: unknown op kind %d", op.Key, op.Kind)
		}
	}
	resp, err := s.kv.Txn(ctx).If(ifs...).Then(thens...).Commit()
	if err != nil {
		return false, 0, fmt.Errorf("etcdkv: txn: %w", mapErr(err))
	}
	return resp.Succeeded, resp.Header.Revision, nil
}

// Grant implements kv.Store: the TTL is rounded up to whole seconds.
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (kv.LeaseID, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("etcdkv: grant: ttl %v is not positive", ttl)
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	resp, err := s.lease.Grant(ctx, secs)
	if err != nil {
		return 0, fmt.Errorf("etcdkv: grant: %w", mapErr(err))
	}
	return kv.LeaseID(resp.ID), nil
}

// KeepAlive implements kv.Store.
func (s *Store) KeepAlive(ctx context.Context, id kv.LeaseID) error {
	if _, err := s.lease.KeepAliveOnce(ctx, clientv3.LeaseID(id)); err != nil {
		return fmt.Errorf("etcdkv: keep lease %x alive: %w", id, mapErr(err))
	}
	return nil
}

// Revoke implements kv.Store.
func (s *Store) Revoke(ctx context.Context, id kv.LeaseID) error {
	if _, err := s.lease.Revoke(ctx, clientv3.LeaseID(id)); err != nil {
		return fmt.Errorf("etcdkv: revoke lease %x: %w", id, mapErr(err))
	}
	return nil
}

// Watch implements kv.Store. The watch requires a leader: a member cut
// off from the cluster ends it with an error rather than staying silent.
func (s *Store) Watch(ctx context.Context, prefix string, fromRev int64) <-chan kv.WatchResponse {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithPrevKV()}
	if fromRev > 0 {
		opts = append(opts, clientv3.WithRev(fromRev))
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	in := s.watcher.Watch(wctx, prefix, opts...)
	out := make(chan kv.WatchResponse)
	go func() {
		defer close(out)
		defer cancel()
		send := func(r kv.WatchResponse) bool {
			if ctx.Err() != nil {
				return false
			}
			select {
			case out <- r:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for resp := range in {
			switch err := resp.Err(); {
			case resp.CompactRevision != 0:
				send(kv.WatchResponse{Err: fmt.Errorf("etcdkv: watch from revision %d, compacted at %d: %w", fromRev, resp.CompactRevision, kv.ErrCompacted)})
				return
			case err != nil:
				send(kv.WatchResponse{Err: fmt.Errorf("etcdkv: watch: %w", mapErr(err))})
				return
			}
			// etcd may batch several revisions (catching up from an old
			// one); the interface gives one response per revision.
			for _, batch := range byRevision(events(resp.Events)) {
				if !send(kv.WatchResponse{Events: batch}) {
					return
				}
			}
		}
		if ctx.Err() == nil {
			// The client was closed under the watch.
			select {
			case out <- kv.WatchResponse{Err: kv.ErrClosed}:
			case <-ctx.Done():
			}
		}
	}()
	return out
}

// byRevision cuts events into runs of one revision each.
func byRevision(evs []kv.Event) [][]kv.Event {
	var out [][]kv.Event
	for i := 0; i < len(evs); {
		j := i + 1
		for j < len(evs) && evs[j].KV.ModRev == evs[i].KV.ModRev {
			j++
		}
		out = append(out, evs[i:j])
		i = j
	}
	return out
}

// events converts a watch response's events. A delete's lease is that of
// the key as it was (etcd reports it only in the previous value).
func events(in []*clientv3.Event) []kv.Event {
	out := make([]kv.Event, 0, len(in))
	for _, ev := range in {
		e := kv.Event{KV: keyValue(ev.Kv)}
		if ev.Type == mvccpb.DELETE {
			e.Type = kv.EventDelete
			e.KV = kv.KeyValue{Key: e.KV.Key, ModRev: e.KV.ModRev}
			if ev.PrevKv != nil {
				e.KV.Lease = kv.LeaseID(ev.PrevKv.Lease)
			}
		} else {
			e.Type = kv.EventPut
		}
		out = append(out, e)
	}
	return out
}

func keyValue(p *mvccpb.KeyValue) kv.KeyValue {
	return kv.KeyValue{Key: string(p.Key), Value: p.Value, CreateRev: p.CreateRevision, ModRev: p.ModRevision, Lease: kv.LeaseID(p.Lease)}
}

// mapErr adds the kv error etcd's error means, if any.
func mapErr(err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound), errors.Is(err, rpctypes.ErrGRPCLeaseNotFound):
		return fmt.Errorf("%w: %w", kv.ErrLeaseNotFound, err)
	case errors.Is(err, rpctypes.ErrTooManyOps), errors.Is(err, rpctypes.ErrGRPCTooManyOps):
		return fmt.Errorf("%w: %w", kv.ErrTooManyOps, err)
	case errors.Is(err, rpctypes.ErrCompacted), errors.Is(err, rpctypes.ErrGRPCCompacted):
		return fmt.Errorf("%w: %w", kv.ErrCompacted, err)
	}
	return err
}
