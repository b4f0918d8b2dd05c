package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/internal/retry"
	"github.com/cutover/cutover/pipeline"
)

// Options configure the sink.
type Options struct {
	// VersionPrefix starts the name of every version bucket; default
	// "cutover:v:". Keys with this prefix are the sink's own and are never
	// treated as data.
	VersionPrefix string
	// TombstoneRetention is how long a deleted key's tombstone protects
	// it, and how long the version of a key with an expiry outlives the
	// expiry; default 8 days: the topic's default retention of 7 days,
	// plus a day. Keep it longer than the topic's retention.
	TombstoneRetention time.Duration
	// Concurrency is the number of pipelines in flight; default 8. Keys
	// are spread over them by hash, so each key's events stay in order.
	Concurrency int
	// PipelineSize is the most events sent in one round trip; default 256.
	PipelineSize int
	// Items, when set, means the events come from DynamoDB: their keys are
	// item keys, rendered into Redis keys and values as it says.
	Items *ItemOptions
	// SweepOwnedOnly makes a truncate sweep only the keys this pipeline
	// wrote (those with a version): the target keeps keys of its own
	// that the source never had — the old store under a roll-back's
	// reverse pipeline keeps what the forward pipeline did not carry.
	// A key whose version passed its deadline (one with an expiry,
	// TombstoneRetention past it) is not swept, nor listed.
	SweepOwnedOnly bool
	// WaitReplicas, when above 0, makes every pipeline of writes end with
	// WAIT: the writes count as applied (and their records may be
	// committed) only once that many replicas have them. Replication is
	// asynchronous, so without it a failover of the target can lose the
	// last writes the old master acknowledged. Fewer replicas within
	// WaitTimeout is a transient failure: the pipeline is sent again.
	// Not with a cluster (WAIT answers for one node).
	WaitReplicas int
	// VersionBuckets is how many hashes of each hash slot hold the
	// versions (see versions.go). A bucket is packed up to 128 entries
	// (Redis's default hash-max-listpack-entries), a hash table past
	// that; more buckets keep each one's cleaning short on keyspaces of
	// hundreds of millions. A target's count is fixed once written, and
	// recorded on it: 0 takes what it recorded, else 1; another number
	// than the recorded one is refused.
	VersionBuckets int
	// WaitTimeout bounds each WAIT; default 2s.
	WaitTimeout time.Duration
	// Addr is only used in messages.
	Addr string
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.VersionPrefix == "" {
		o.VersionPrefix = "cutover:v:"
	}
	if o.TombstoneRetention <= 0 {
		o.TombstoneRetention = 8 * 24 * time.Hour
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.PipelineSize <= 0 {
		o.PipelineSize = 256
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Stats are counters since the sink was made.
type Stats struct {
	// Writes that changed the target.
	Writes int64
	// Retries of transient failures (OOM, LOADING, a lost connection…).
	Retries int64
	// Swept keys removed by truncate events.
	Swept int64
}

// Sink writes events to a Redis database or cluster.
type Sink struct {
	cl   goredis.UniversalClient
	opts Options
	log  *slog.Logger
	ret  string // TombstoneRetention in seconds, as the script wants it
	// legacyUntil: until then, version keys of the layout before buckets
	// may be on the target, and workers of that layout may write them
	// (prepareLayout).
	legacyUntil time.Time
	// askedBuckets is Options.VersionBuckets as given (0: the target's).
	askedBuckets int
	// pendingLayout is the layout record to write before the first
	// write, when the target had none (recordLayout).
	layoutMu      sync.Mutex
	pendingLayout string

	writes, retries, swept atomic.Int64
}

var _ pipeline.Sink = (*Sink)(nil)

// New returns a sink writing through cl (a *redis.Client or a
// *redis.ClusterClient). Call Prepare before Apply.
func New(cl goredis.UniversalClient, opts Options) (*Sink, error) {
	opts.setDefaults()
	if _, cluster := cl.(*goredis.ClusterClient); cluster && opts.WaitReplicas > 0 {
		return nil, fmt.Errorf("redis sink: waiting for replicas (WAIT) answers for one node, not a cluster: drop --target-redis-wait-replicas")
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = 2 * time.Second
	}
	if opts.Items != nil {
		items := *opts.Items
		if err := items.Validate(); err != nil {
			return nil, fmt.Errorf("redis sink: %w", err)
		}
		if err := items.compile(); err != nil {
			return nil, fmt.Errorf("redis sink: %w", err)
		}
		opts.Items = &items
	}
	return &Sink{cl: cl, opts: opts, log: opts.Logger, askedBuckets: opts.VersionBuckets, ret: strconv.FormatInt(int64((opts.TombstoneRetention+time.Second-1)/time.Second), 10)}, nil
}

// Stats returns the counters so far.
func (s *Sink) Stats() Stats {
	return Stats{Writes: s.writes.Load(), Retries: s.retries.Load(), Swept: s.swept.Load()}
}

// Prepare loads the apply script into the server (every master of a
// cluster) and reads how the target keeps versions (prepareLayout).
func (s *Sink) Prepare(ctx context.Context) error {
	if err := applyScript.Load(ctx, s.cl).Err(); err != nil {
		return fmt.Errorf("redis sink %s: load apply script: %w", s.opts.Addr, err)
	}
	return s.prepareLayout(ctx)
}

// Apply implements pipeline.Sink.
func (s *Sink) Apply(ctx context.Context, events []pipeline.Event) ([]pipeline.Result, error) {
	if err := s.recordLayout(ctx); err != nil {
		return nil, err
	}
	results := make([]pipeline.Result, len(events))
	if len(events) == 1 && events[0].Op == pipeline.OpTruncate {
		n, err := s.sweep(ctx, &events[0])
		if err != nil {
			return nil, err
		}
		s.log.Info("truncate applied", "partition", events[0].Scope.Partition, "swept", n)
		// A truncate that found nothing older changed nothing: counted as
		// skipped, so that a replay that only repeats what the target holds
		// reports no event applied.
		results[0] = pipeline.Result{Outcome: pipeline.Applied}
		if n == 0 {
			results[0].Outcome = pipeline.SkippedOlder
		}
		return results, nil
	}
	return s.apply(ctx, events, s.targetKey)
}

// apply writes events to the keys keyOf names for them.
func (s *Sink) apply(ctx context.Context, events []pipeline.Event, keyOf func(*pipeline.Event) (string, error)) ([]pipeline.Result, error) {
	results := make([]pipeline.Result, len(events))
	lanes := make([][]int, s.opts.Concurrency)
	for _, idx := range s.plan(events, results) {
		lane := pipeline.Murmur2(events[idx].Key) % uint32(len(lanes))
		lanes[lane] = append(lanes[lane], idx)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, lane := range lanes {
		if len(lane) == 0 {
			continue
		}
		g.Go(func() error {
			for start := 0; start < len(lane); start += s.opts.PipelineSize {
				part := lane[start:min(start+s.opts.PipelineSize, len(lane))]
				if err := s.applyPipeline(gctx, events, part, results, keyOf); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// plan picks the events to write, in order: for a key written only with
// whole values, the newest (the others could only lose the comparison);
// for a key with chunks, all of them, in order. The rest are marked
// SkippedOlder in results.
func (s *Sink) plan(events []pipeline.Event, results []pipeline.Result) []int {
	newest := make(map[string]int, len(events))
	chunked := map[string]bool{}
	for i := range events {
		k := string(events[i].Key)
		if events[i].Chunk != nil {
			chunked[k] = true
		}
		if j, ok := newest[k]; !ok || events[i].Version.Compare(events[j].Version) >= 0 {
			newest[k] = i
		}
	}
	order := make([]int, 0, len(events))
	for i := range events {
		if chunked[string(events[i].Key)] || newest[string(events[i].Key)] == i {
			order = append(order, i)
		} else {
			results[i] = pipeline.Result{Outcome: pipeline.SkippedOlder}
		}
	}
	return order
}

// One apply script call carries at most this many events, and about
// this many bytes of arguments: a few hundred small values, or one big
// key's piece. The calls of a pipeline are sent in one round trip.
const (
	maxCallEvents = 128
	maxCallBytes  = 1 << 20
)

// scriptCall is one call of the apply script: three keys per event.
type scriptCall struct {
	keys []string
	argv []any
	idx  []int // the events, in order
	size int
}

// calls groups the events idx into apply script calls, in order. On a
// cluster a call's keys must share a slot: events are grouped by slot
// first. Events that cannot be written are marked Rejected in results.
func (s *Sink) calls(events []pipeline.Event, idx []int, results []pipeline.Result, keyOf func(*pipeline.Event) (string, error)) []*scriptCall {
	_, cluster := s.cl.(*goredis.ClusterClient)
	legacy := s.legacyOn()
	var out []*scriptCall
	open := map[int]*scriptCall{} // by slot on a cluster; slot 0 otherwise
	for _, i := range idx {
		key, err := keyOf(&events[i])
		var a []any
		if err == nil && s.IsVersionKey(key) {
			err = fmt.Errorf("%w: key %q is under the target's version prefix %q, whose keys are the sink's own (version buckets, the layout record): writing it would replace them; leave %s* out of the source (--exclude)",
				pipeline.ErrInvalidEvent, key, s.opts.VersionPrefix, s.opts.VersionPrefix)
		}
		if err == nil {
			a, err = s.args(&events[i])
		}
		if err != nil {
			results[i] = pipeline.Result{Outcome: pipeline.Rejected, Err: err}
			continue
		}
		size := 0
		for _, x := range a {
			switch x := x.(type) {
			case string:
				size += len(x)
			case []byte:
				size += len(x)
			default:
				size += 8
			}
		}
		var slot int
		if cluster {
			slot = pipeline.RedisSlot([]byte(key))
		}
		c := open[slot]
		if c == nil || len(c.idx) >= maxCallEvents || c.size+size > maxCallBytes && len(c.idx) > 0 {
			c = &scriptCall{argv: []any{s.ret, "0"}}
			if legacy {
				c.argv[1] = "1"
			}
			open[slot] = c
			out = append(out, c)
		}
		kb := []byte(key)
		bucket, lkey := s.bucketKey(kb), ""
		if legacy {
			lkey = legacyKey(s.opts.VersionPrefix, kb)
		} else {
			// The script touches the legacy key only while legacy keys
			// may exist: the bucket stands in (declared, same slot), and
			// no name is built nor slot hashed again per event.
			lkey = bucket
		}
		c.keys = append(c.keys, key, bucket, lkey)
		c.argv = append(append(c.argv, len(a)), a...)
		c.idx = append(c.idx, i)
		c.size += size
	}
	return out
}

// replyError is an error the server answered inside the apply script:
// isTransient classifies it as a server reply, by its code.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

// applyPipeline writes the events idx in one round trip of batched
// script calls, retrying the whole round trip on transient failures
// (re-applying is harmless: every write is versioned). It fills results.
func (s *Sink) applyPipeline(ctx context.Context, events []pipeline.Event, idx []int, results []pipeline.Result, keyOf func(*pipeline.Event) (string, error)) error {
	calls := s.calls(events, idx, results, keyOf)
	// Forever: a sink must not skip a record.
	err := retry.Forever(ctx, func() error {
		pipe := s.cl.Pipeline()
		cmds := make([]*goredis.Cmd, len(calls))
		for j, c := range calls {
			cmds[j] = applyScript.EvalSha(ctx, pipe, c.keys, c.argv...)
		}
		var wait *goredis.Cmd
		if s.opts.WaitReplicas > 0 {
			// On the pipeline's own connection, after its writes: WAIT
			// answers for the writes of the connection it is sent on.
			wait = pipe.Do(ctx, "WAIT", s.opts.WaitReplicas, s.opts.WaitTimeout.Milliseconds())
		}
		_, _ = pipe.Exec(ctx) // each command's error is looked at below
		var transient error
		if wait != nil {
			if n, err := wait.Int64(); err != nil {
				transient = fmt.Errorf("WAIT: %w", err)
			} else if n < int64(s.opts.WaitReplicas) {
				transient = fmt.Errorf("%d of the %d replicas asked for (--target-redis-wait-replicas) took the writes within %v", n, s.opts.WaitReplicas, s.opts.WaitTimeout)
			}
		}
		for j, c := range calls {
			out, err := cmds[j].StringSlice()
			if err == nil && len(out) != len(c.idx) {
				err = fmt.Errorf("the apply script answered %d results for %d events", len(out), len(c.idx))
			}
			switch {
			case err == nil:
				for n, i := range c.idx {
					results[i] = s.outcome(&events[i], out[n], &transient)
				}
			case isNoScript(err):
				if lerr := applyScript.Load(ctx, s.cl).Err(); lerr != nil {
					transient = lerr
				} else {
					transient = err
				}
			case isTransient(err):
				transient = err
			default:
				for _, i := range c.idx {
					results[i] = pipeline.Result{Outcome: pipeline.Rejected,
						Err: fmt.Errorf("redis %s refused the write of key %q: %w", s.opts.Addr, events[i].Key, err)}
				}
			}
		}
		if transient != nil {
			if ctx.Err() != nil {
				return retry.Permanent(ctx.Err())
			}
			s.retries.Add(1)
			return transient
		}
		for _, i := range idx {
			if results[i].Outcome == pipeline.Applied {
				s.writes.Add(1)
			}
		}
		return nil
	}, func(err error, wait time.Duration) {
		s.log.Warn("redis sink write failed, retrying", "addr", s.opts.Addr, "err", err, "retry_in", wait)
	}, retry.Initial(50*time.Millisecond), retry.Max(5*time.Second))
	if err != nil {
		return err
	}
	return s.takeBack(ctx, events, idx, results, keyOf)
}

// outcome reads the apply script's answer for one event: '1' written, '0'
// the target holds this version or a newer one, 'E' and the server's
// error. A transient error is recorded in transient (the round trip is
// retried); any other rejects the event.
func (s *Sink) outcome(e *pipeline.Event, answer string, transient *error) pipeline.Result {
	switch answer {
	case "1":
		return pipeline.Result{Outcome: pipeline.Applied}
	case "0":
		return pipeline.Result{Outcome: pipeline.SkippedOlder}
	}
	err := replyError(strings.TrimPrefix(answer, "E"))
	if isTransient(err) {
		*transient = err
		return pipeline.Result{}
	}
	return pipeline.Result{Outcome: pipeline.Rejected, Err: fmt.Errorf("redis %s refused key %q: %w", s.opts.Addr, e.Key, err)}
}

// takeBack deletes, for every later piece of a big key that was rejected,
// the pieces before it, which are on the target: a key's pieces land all
// or none (as the source does for a piece too big for a record), so the
// target never keeps part of a value as if it were the whole. The delete
// is versioned just after the pieces, like the source's: a newer value
// already on the target stays, and any later change of the key wins over
// it. The piece itself stays rejected, and is dead-lettered.
func (s *Sink) takeBack(ctx context.Context, events []pipeline.Event, idx []int, results []pipeline.Result, keyOf func(*pipeline.Event) (string, error)) error {
	var dels []pipeline.Event
	var pieces []int
	for _, i := range idx {
		e := &events[i]
		if results[i].Outcome != pipeline.Rejected || e.Chunk == nil || e.Chunk.Index == 0 {
			continue
		}
		dels = append(dels, pipeline.Event{Key: e.Key, Op: pipeline.OpDelete, Origin: e.Origin, Version: e.Version.Next(), Source: e.Source})
		pieces = append(pieces, i)
	}
	if len(dels) == 0 {
		return nil
	}
	all := make([]int, len(dels))
	for j := range all {
		all[j] = j
	}
	res := make([]pipeline.Result, len(dels))
	if err := s.applyPipeline(ctx, dels, all, res, keyOf); err != nil {
		return err
	}
	for j, i := range pieces {
		switch res[j].Outcome {
		case pipeline.Applied:
			results[i].Err = fmt.Errorf("%w; the key's earlier pieces are taken back (deleted at the next version)", results[i].Err)
		case pipeline.Rejected:
			results[i].Err = fmt.Errorf("%w; the key's earlier pieces could not be taken back either: %w", results[i].Err, res[j].Err)
		default:
			results[i].Err = fmt.Errorf("%w; the target already holds a newer version of the key (or the take-back itself)", results[i].Err)
		}
	}
	return nil
}

// literalKey is the event's key itself: for the sweep's deletes, whose
// keys are already Redis keys.
func literalKey(e *pipeline.Event) (string, error) { return string(e.Key), nil }

// targetKey is the Redis key an event writes.
func (s *Sink) targetKey(e *pipeline.Event) (string, error) { return s.TargetKey(e.Key) }

// TargetKey is the Redis key of an event key: itself, or with Items the
// key template rendered from the item key.
func (s *Sink) TargetKey(key []byte) (string, error) {
	if s.opts.Items == nil {
		return string(key), nil
	}
	return s.opts.Items.itemKey(key)
}

// maxEntryFields is the most fields of one stream entry the apply script
// can pass to XADD: Lua's unpack stops near 8,000 values.
const maxEntryFields = 3900

func isNoScript(err error) bool { return strings.HasPrefix(err.Error(), "NOSCRIPT") }

// isTransient reports whether the sink retries a Redis error: one that
// may pass by itself (the server is out of memory, loading, busy,
// failing over, or the connection broke), and one of a context that
// ended — the caller's loop then stops on its context, without a result:
// an event is never rejected because the sink was stopped. Any other
// reply of the server (denied, refused, unknown) rejects the events of
// the call, which are dead-lettered.
func isTransient(err error) bool {
	switch redisconn.Classify(err) {
	case redisconn.Transient, redisconn.Stopped:
		return true
	case redisconn.Denied, redisconn.Refused, redisconn.Unknown:
		return false
	}
	return false
}
