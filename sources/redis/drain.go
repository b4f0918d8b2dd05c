package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/internal/redisconn"
)

// DrainChannel is the pub/sub channel on which the source of pipeline
// name sends itself drain tokens: the source's Redis user needs it
// (ACL `&cutover:drain:<name>`, or a pattern that covers it).
func DrainChannel(name string) string { return "cutover:drain:" + name }

// drainTokens are a node's drain tokens in flight: sent with PUBLISH,
// received on the connection that receives the node's notifications.
type drainTokens struct {
	channel string
	// enabled: the user may SUBSCRIBE and PUBLISH to the channel.
	enabled bool
	prefix  string // makes this node's tokens unique
	seq     atomic.Int64

	mu      sync.Mutex
	waiting map[string]chan int64
}

func newDrainTokens(name string, conn redisconn.Conn) *drainTokens {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &drainTokens{channel: DrainChannel(name), prefix: conn.Addr + "/" + hex.EncodeToString(b[:]) + "/",
		waiting: map[string]chan int64{}}
}

// expect makes a new token and the channel its arrival sends the dirty
// set's mark to.
func (d *drainTokens) expect() (string, <-chan int64) {
	tok := d.prefix + fmt.Sprint(d.seq.Add(1))
	ch := make(chan int64, 1)
	d.mu.Lock()
	d.waiting[tok] = ch
	d.mu.Unlock()
	return tok, ch
}

func (d *drainTokens) drop(tok string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.waiting, tok)
}

// arrived is called by receive when a message arrives on the channel:
// tokens of other nodes (in a cluster every node hears every PUBLISH) and
// second copies are ignored.
func (d *drainTokens) arrived(tok string, mark int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch, ok := d.waiting[tok]; ok {
		ch <- mark
		delete(d.waiting, tok)
	}
}

// subscribeDrain adds the drain channel to the notifications' connection,
// once a probe on a connection of its own showed that the user may
// subscribe and publish to it. A refusal on the notifications' connection
// would look like a lost connection and heal again and again; a user
// without the channel keeps live capture, and only drain is refused.
func (l *Live) subscribeDrain(ctx context.Context) {
	if err := probeDrainChannel(ctx, l.cl, l.drain.channel); err != nil {
		l.log.Warn("cutover drain will not work with this source: the Redis user may not use its pub/sub channel",
			"channel", l.drain.channel, "err", err, "fix", "grant the channel to the user, e.g. ACL SETUSER <user> &"+l.drain.channel)
		return
	}
	if err := l.ps.Subscribe(ctx, l.drain.channel); err != nil {
		l.log.Warn("cutover drain will not work with this source: subscribing to its channel failed", "channel", l.drain.channel, "err", err)
		return
	}
	l.drain.enabled = true
}

// probeDrainChannel subscribes to channel on a connection of its own and
// publishes to it.
func probeDrainChannel(ctx context.Context, cl *goredis.Client, channel string) error {
	ps := cl.Subscribe(ctx, channel)
	defer ps.Close()
	if _, err := ps.ReceiveTimeout(ctx, 10*time.Second); err != nil {
		return fmt.Errorf("SUBSCRIBE %s: %w", channel, err)
	}
	if err := cl.Publish(ctx, channel, "probe").Err(); err != nil {
		return fmt.Errorf("PUBLISH %s: %w", channel, err)
	}
	return nil
}

// drained returns once every change of this node notified before it was
// called is published: the changed keys are read and handed to the
// publisher, and every heal asked for by then has re-read every key.
//
// It PUBLISHes a token on the drain channel, which the connection that
// receives the notifications also subscribes to. Redis writes the
// messages of one connection in the order it sends them, and a write's
// notification is sent before the write returns: so when the token
// arrives, the notification of every write that completed before the
// token was sent has arrived, and its key is in the dirty set (or a heal
// was asked for, when the connection was lost in between: receive asks
// for it before it reads anything from the new connection). Then it waits
// until every key dirty at the token's arrival is read and published
// (barrier), and until a heal has completed for every heal asked for so
// far — a read that failed after the token asks for one too.
func (l *Live) drained(ctx context.Context) error {
	if !l.drain.enabled {
		return fmt.Errorf("redis %s: the source's user may not use channel %s (grant it: ACL SETUSER <user> &%s)",
			l.conn.Addr, l.drain.channel, l.drain.channel)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-l.snapshotDone:
	}
	tok, arrived := l.drain.expect()
	defer l.drain.drop(tok)
	// A token sent while the subscription is down never arrives: send it
	// again until one does.
	resend := time.NewTimer(0)
	defer resend.Stop()
	var mark int64
	for waiting := true; waiting; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case mark = <-arrived:
			waiting = false
		case <-resend.C:
			if err := l.cl.Publish(ctx, l.drain.channel, tok).Err(); err != nil && ctx.Err() == nil {
				l.log.Debug("drain: publishing a token failed; sending it again", "err", err)
			}
			resend.Reset(time.Second)
		}
	}
	// A flush sends no notification: one acknowledged before the token
	// shows in the counters now.
	if err := l.checkFlushes(ctx); err != nil {
		return fmt.Errorf("redis %s: look for flushes: %w", l.conn.Addr, err)
	}
	if err := l.dirty.taken.wait(ctx, mark); err != nil {
		return err
	}
	l.barrier()
	return l.healCovered.wait(ctx, l.healRequested.Load())
}

// errNotDrainable is a backfill: it answers no drain.
var errNotDrainable = errors.New("a backfill does not answer drain requests: drain a running `cutover replicate`")

// Drained returns once every change the source saw before the call is
// handed to the publisher (kafka.DrainSource): the source has started
// its nodes, the snapshot of every node is done, and every node is
// drained (see Live.drained). On a cluster the
// masters are drained again until the topology stayed the same
// throughout and no slot is moving: a write to a slot that moved to a
// master not followed yet would otherwise be missed.
func (s *Source) Drained(ctx context.Context) error {
	if s.opts.Mode.SnapshotOnly {
		return errNotDrainable
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.started:
	}
	retry := time.NewTimer(time.Second)
	defer retry.Stop()
	for {
		why, err := s.drainNodes(ctx)
		if err != nil || why == "" {
			return err
		}
		s.log.Info("drain: the cluster is changing; draining its masters again once it settles", "why", why)
		s.lookAtTopology()
		retry.Reset(time.Second)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-retry.C:
		}
	}
}

// drainNodes drains every running node once; why, when not empty, says
// why the result does not count and must be tried again.
func (s *Source) drainNodes(ctx context.Context) (why string, err error) {
	before := s.nodes.topologyChanges.Load()
	if n := s.unstarted.Load(); n > 0 {
		return fmt.Sprintf("%d masters are not followed yet", n), nil
	}
	running := s.nodes.running()
	g, gctx := errgroup.WithContext(ctx)
	var stopped atomic.Bool
	for _, nr := range running {
		g.Go(func() error {
			nctx, cancel := context.WithCancel(gctx)
			defer cancel()
			go func() {
				select {
				case <-nr.done:
					stopped.Store(true)
					cancel()
				case <-nctx.Done():
				}
			}()
			if err := nr.live.drained(nctx); err != nil {
				return fmt.Errorf("drain %s: %w", nr.node.conn.Addr, err)
			}
			return nil
		})
	}
	err = g.Wait()
	switch {
	case ctx.Err() != nil:
		return "", ctx.Err()
	case s.nodes.topologyChanges.Load() != before:
		return "the cluster's topology changed", nil
	case stopped.Load():
		return "a node stopped", nil
	case err != nil:
		return "", err
	case s.cluster == nil:
		return "", nil
	}
	shards, err := s.shards(ctx)
	if err != nil {
		return "reading the topology failed: " + err.Error(), nil
	}
	if len(shards) != len(running) || slices.ContainsFunc(shards, func(sh Shard) bool {
		return !slices.ContainsFunc(running, func(nr *nodeRun) bool { return nr.node.shard.Equal(sh) })
	}) {
		return "the cluster's topology changed", nil
	}
	for _, nr := range running {
		moving, err := slotsSettled(ctx, nr.node.cl, nr.node.shard.Slots)
		switch {
		case err != nil:
			return "reading the slots of " + nr.node.conn.Addr + " failed: " + err.Error(), nil
		case moving != "":
			return strings.TrimSpace(nr.node.conn.Addr + ": " + moving), nil
		}
	}
	return "", nil
}
