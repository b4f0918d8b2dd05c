package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

// WorkerOptions configure a Worker.
type WorkerOptions struct {
	// Topic to consume.
	Topic string
	// Group is the consumer group; its committed offsets are the sink's
	// position. A group that has committed nothing starts at the earliest
	// offset, so nothing already published is missed.
	Group string
	// DeadLetterTopic receives records that cannot be decoded or applied.
	DeadLetterTopic string
	// MaxDeadLetterBytes is the largest dead-letter record written (and
	// record batch produced), as Kafka measures it against the topic's
	// max.message.bytes; default DefaultMaxRecordBytes. A dead letter that
	// would be larger — the original record plus the error headers —
	// leaves the original value out (see HeaderValueLeftOut). Keep it at
	// or below the dead-letter topic's max.message.bytes; a topic that
	// refuses a dead letter anyway gets it without its value.
	MaxDeadLetterBytes int
	// MaxPollRecords bounds one poll; default 2000.
	MaxPollRecords int
	// Concurrency is the most sink calls in flight at once; zero means 16
	// (the CLI passes sink.redis.concurrency or sink.dynamodb.concurrency,
	// whose defaults differ). The worker adapts the number below it to the
	// target (see limit). Each call carries up to MaxBatch events of
	// different keys, which a sink may write in parallel itself.
	Concurrency int
	// MaxBatch bounds the events of one sink call; zero means 500 (the CLI
	// passes 1 for a DynamoDB target: one conditional write per call).
	MaxBatch int
	// MaxInFlightRecords and MaxInFlightBytes bound what has been fetched
	// and not yet finished; defaults twice what Concurrency calls of
	// MaxBatch events hold (at least 4,096 records, at most 20,000) and
	// 8 MiB of keys and values. They bound the worker's memory, whatever
	// the topic holds.
	MaxInFlightRecords int
	MaxInFlightBytes   int64
	// CommitInterval is how often finished offsets are committed; default
	// 500ms.
	CommitInterval time.Duration
	// InstanceID makes the worker a static member of the group: a worker
	// restarted with the same ID takes its predecessor's partitions back
	// at once, instead of waiting for the group to notice the old one died.
	// Two running workers must never share an ID (the second fences the
	// first). Empty: a dynamic member.
	InstanceID string
	// SessionTimeout is how long the group waits for a silent worker before
	// giving its partitions to others; default 10s.
	SessionTimeout time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// ObserveLag, if set, is called for every applied event whose source
	// read time is known, with the time from that read to the apply: the
	// pipeline's end-to-end lag.
	ObserveLag func(time.Duration)
}

// WorkerStats are counters since the Worker was made.
type WorkerStats struct {
	Applied      int64
	SkippedOlder int64
	// AppliedByOp and SkippedByOp split Applied and SkippedOlder by
	// operation.
	AppliedByOp, SkippedByOp pipeline.OpCounts
	// DeadLettered counts records written to the dead-letter topic, for
	// either reason below.
	DeadLettered int64
	DecodeErrors int64
	Rejected     int64
	// Batches counts sink calls.
	Batches int64
	// FetchPauses counts the times fetching was paused for a throttled
	// target.
	FetchPauses int64
	// Paused is true while fetching is paused.
	Paused bool
	// Concurrency is how many sink calls may be in flight now (the
	// adaptive limit, at most WorkerOptions.Concurrency).
	Concurrency int
}

// Worker consumes a topic in a consumer group and applies it to a Sink.
type Worker struct {
	cl       *kgo.Client
	opts     WorkerOptions
	sink     pipeline.Sink
	log      *slog.Logger
	progress *Progress

	inflight *inFlight
	queue    *keyQueue
	limit    *limit
	commitMu sync.Mutex // one commit at a time, in offset order
	// deadMu makes the calls in flight write their dead letters one call
	// at a time: concurrent dead letters share producer batches, and a
	// topic that refuses a large one refuses its batch-mates with it, so
	// the retry of each alone must not meet another call's.
	deadMu sync.Mutex

	applied, skipped, deadLettered, decodeErrors, rejected, batches, pauses atomic.Int64
	appliedByOp, skippedByOp                                                opCounters
	paused                                                                  atomic.Bool
	lastPoll                                                                atomic.Int64 // unix nanoseconds
}

// WorkerOpts are the franz-go options a Worker's client needs: a consumer
// group that commits only what the worker says, and rebalances only
// between polls, once the records polled are tracked, so that a revoked
// partition commits exactly what is finished of it. They name no topic: the
// client joins the group only once Run starts (it adds the topic), so a
// command that fails before it runs its worker leaves the group alone and
// closes at once, instead of waiting on a join it started for nothing.
func WorkerOpts(o WorkerOptions) []kgo.Opt {
	session := o.SessionTimeout
	if session <= 0 {
		session = 10 * time.Second
	}
	opts := []kgo.Opt{
		kgo.SessionTimeout(session),
		kgo.HeartbeatInterval(session / 5),
		kgo.ConsumerGroup(o.Group),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(onRevoked(false)),
		kgo.OnPartitionsLost(onRevoked(true)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.FetchMaxBytes(4 << 20),
		kgo.FetchMaxPartitionBytes(1 << 20),
		// Dead letters are produced by the same client, acks=all, in
		// batches no larger than one dead letter may be: a broker refuses
		// a batch over the topic's max.message.bytes as a whole.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(int32(o.deadLetterBytes())),
	}
	if o.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(o.InstanceID))
	}
	return opts
}

func (o WorkerOptions) deadLetterBytes() int {
	if o.MaxDeadLetterBytes <= 0 {
		return DefaultMaxRecordBytes
	}
	return max(o.MaxDeadLetterBytes, minRecordBytes)
}

// NewWorker runs sink on records consumed by cl, which must have been made
// with WorkerOpts(opts). It waits until the cluster can accept the
// idempotent writes of dead letters.
func NewWorker(ctx context.Context, cl *kgo.Client, opts WorkerOptions, sink pipeline.Sink) (*Worker, error) {
	if opts.Topic == "" || opts.Group == "" || opts.DeadLetterTopic == "" {
		return nil, fmt.Errorf("worker needs a topic, a consumer group and a dead-letter topic")
	}
	if err := waitProducerReady(ctx, cl); err != nil {
		return nil, err
	}
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&opts.MaxPollRecords, 2000)
	def(&opts.Concurrency, 16)
	def(&opts.MaxBatch, 500)
	// Enough queued to keep every call busy and full, and no more: what
	// waits beyond that only costs memory.
	def(&opts.MaxInFlightRecords, min(max(4096, 2*opts.Concurrency*opts.MaxBatch), 20_000))
	if opts.MaxInFlightBytes <= 0 {
		opts.MaxInFlightBytes = 8 << 20
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = 500 * time.Millisecond
	}
	opts.MaxDeadLetterBytes = opts.deadLetterBytes()
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Worker{
		cl: cl, opts: opts, sink: sink, log: opts.Logger, progress: newProgress(),
		inflight: newInFlight(opts.MaxInFlightRecords, opts.MaxInFlightBytes),
		queue:    newKeyQueue(opts.Concurrency),
		limit:    newLimit(opts.Concurrency),
	}, nil
}

// LastPoll is when the worker last returned from polling Kafka (zero
// before the first poll): a worker that applies and polls is alive.
func (w *Worker) LastPoll() time.Time {
	if n := w.lastPoll.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Progress reports what the worker has committed.
func (w *Worker) Progress() *Progress { return w.progress }

// Stats returns the counters so far.
func (w *Worker) Stats() WorkerStats {
	return WorkerStats{
		Applied: w.applied.Load(), SkippedOlder: w.skipped.Load(), DeadLettered: w.deadLettered.Load(),
		AppliedByOp: w.appliedByOp.load(), SkippedByOp: w.skippedByOp.load(),
		DecodeErrors: w.decodeErrors.Load(), Rejected: w.rejected.Load(), Batches: w.batches.Load(),
		FetchPauses: w.pauses.Load(), Paused: w.paused.Load(), Concurrency: w.limit.current(),
	}
}

// Run consumes until ctx ends (then it returns nil) or a failure stops it.
//
// Fetching and applying run side by side: records are fetched while
// earlier ones are still being written, up to the in-flight window
// (MaxInFlightRecords, MaxInFlightBytes). Each key's events are applied in
// partition order, one call after the other; different keys are applied
// in parallel, in as many calls at once as the adaptive limit allows (at
// most Concurrency). Offsets are
// committed per partition up to the last record before which every
// record is finished, never past one still in flight; a rebalance and a
// stop commit exactly that, and leave the rest to be applied again by
// whichever worker next owns the partition, which versioned apply makes
// harmless.
func (w *Worker) Run(ctx context.Context) error {
	workers.Store(w.cl, w)
	defer workers.Delete(w.cl)
	w.cl.AddConsumeTopics(w.opts.Topic) // joins the group

	runCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	var wg sync.WaitGroup
	goRun := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(runCtx); err != nil && runCtx.Err() == nil {
				fail(err)
			}
		}()
	}
	// The throttle check runs beside the poll loop: writes at a throttled
	// table's pace can take many seconds, and fetching must pause while
	// they do.
	goRun(func(ctx context.Context) error {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			w.pauseIfThrottled()
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	for range w.opts.Concurrency {
		goRun(w.applyLoop)
	}
	goRun(func(ctx context.Context) error {
		t := time.NewTicker(w.opts.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				w.commit(ctx)
			}
		}
	})

	err := w.fetchLoop(runCtx)
	var applyErr error
	if runCtx.Err() != nil && ctx.Err() == nil {
		applyErr = context.Cause(runCtx)
	}
	fail(nil) // stops the appliers: what they have not finished is abandoned
	wg.Wait()
	// Commit what is finished, even though ctx has ended.
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	w.commit(stopCtx)
	cancel()
	switch {
	case err != nil:
		return err
	case applyErr != nil:
		return applyErr
	}
	w.leave(ctx) // stopped on purpose, also in the middle of a write
	return nil
}

// fetchLoop polls records and queues them for the appliers until ctx ends
// (nil) or fetching fails.
func (w *Worker) fetchLoop(ctx context.Context) error {
	for {
		if err := w.inflight.waitRoom(ctx); err != nil {
			return nil
		}
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if w.paused.Load() {
			// Paused partitions fetch nothing: wake up to look again.
			pollCtx, cancel = context.WithTimeout(ctx, time.Second)
		}
		fetches := w.cl.PollRecords(pollCtx, max(1, min(w.opts.MaxPollRecords, w.inflight.room())))
		cancel()
		w.lastPoll.Store(time.Now().UnixNano())
		if fetches.IsClientClosed() || ctx.Err() != nil {
			w.cl.AllowRebalance()
			return nil
		}
		if err := w.fetchErr(fetches); err != nil {
			w.cl.AllowRebalance()
			return err
		}
		// Rebalances wait until the records polled are tracked: a
		// partition revoked meanwhile then commits exactly its finished
		// prefix.
		err := w.dispatch(ctx, fetches.Records())
		w.cl.AllowRebalance()
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped, or an applier failed: its error is the cause
			}
			return err
		}
	}
}

// dispatch tracks records and queues them by key. A truncate
// event is a barrier: it is applied on its own once everything before it
// is finished, before anything after it, so its sweep sees exactly what
// was written before it.
func (w *Worker) dispatch(ctx context.Context, recs []*kgo.Record) error {
	for _, r := range recs {
		r = detach(r)
		if _, ok := IsBarrier(r); ok {
			// Nothing to apply: finished at once, so the commit passes it
			// once everything before it in its partition is finished
			// (what cutover drain waits for).
			w.inflight.finish(w.inflight.add(r))
			continue
		}
		e, decodeErr := pipeline.Decode(r.Value)
		truncate := decodeErr == nil && e.Op == pipeline.OpTruncate
		if truncate {
			if err := w.inflight.waitIdle(ctx); err != nil {
				return err
			}
		}
		t := w.inflight.add(r)
		switch {
		case decodeErr != nil:
			w.queue.push(r.Key, job{t: t, decodeErr: decodeErr})
		case truncate:
			if err := w.applyJobs(ctx, []job{{t: t, event: e}}); err != nil {
				return err
			}
		default:
			w.queue.push(e.Key, job{t: t, event: e})
		}
	}
	return nil
}

// detach copies a fetched record out of its fetch. Its key, value and
// headers are slices of the whole decompressed batch it came in, and the
// record itself sits in the fetch's block of records: a record kept until
// its offset is committed would keep all of that alive, and memory would
// follow the batches in flight rather than the records.
func detach(r *kgo.Record) *kgo.Record {
	c := *r
	c.Key = bytes.Clone(r.Key) // nil stays nil (a truncate), empty stays empty
	c.Value = bytes.Clone(r.Value)
	if len(r.Headers) > 0 {
		c.Headers = make([]kgo.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: bytes.Clone(h.Value)}
		}
	}
	return &c
}

// applyLoop takes jobs of keys not already being written and applies
// them, a call at a time, while the adaptive limit allows, until ctx ends
// (nil) or the sink fails.
func (w *Worker) applyLoop(ctx context.Context) error {
	for {
		if err := w.limit.acquire(ctx); err != nil {
			return nil
		}
		jobs, keys, ok := w.queue.take(ctx, w.opts.MaxBatch)
		if !ok {
			return nil
		}
		start := time.Now()
		err := w.applyJobs(ctx, jobs)
		w.limit.release(w.throttled(), time.Since(start), len(jobs))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		w.queue.done(keys)
	}
}

// fetchErr logs fetch errors and returns the first one that retrying
// cannot fix (authorization, a deleted topic).
func (w *Worker) fetchErr(fetches kgo.Fetches) error {
	var fatal error
	fetches.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		var session *kgo.ErrGroupSession
		if errors.As(err, &session) {
			// Kicked out of the group (a pause longer than the session
			// timeout, say): the client rejoins by itself. Whatever this
			// worker still applies for partitions it lost is refused by
			// version where the new owner got further.
			w.log.Warn("this worker lost its place in the consumer group and is rejoining", "err", err)
			return
		}
		var dataLoss *kgo.ErrDataLoss
		var ke *kerr.Error
		if errors.As(err, &ke) && !kerr.IsRetriable(err) && !errors.As(err, &dataLoss) && fatal == nil {
			fatal = fmt.Errorf("consume %s[%d]: %w", topic, partition, err)
			return
		}
		w.log.Warn("fetch error, retrying", "topic", topic, "partition", partition, "err", err)
	})
	return fatal
}
