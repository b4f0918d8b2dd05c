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
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cutover/cutover/pipeline"
)

// Sink applies events to a target store. sinks/dynamodb and sinks/redis
// implement it.
type Sink interface {
	// Apply applies a batch and returns one Result per event, in order.
	// Events of one key are in partition order; a sink may apply different
	// keys concurrently but must keep each key's events in order (or keep
	// only the newest version of a key: versioned apply makes the end state
	// the same). A truncate event always comes alone: the sink removes
	// every key its scope covers whose version is older than the event's.
	//
	// An error means the batch was not (entirely) applied and must not be
	// committed: the context ended, or the sink gave up on a failure it
	// cannot classify. Events a sink can never apply are Rejected results,
	// not errors.
	Apply(ctx context.Context, events []pipeline.Event) ([]pipeline.Result, error)
}

// throttledSink is a sink that can say its target is throttling it: the
// worker then stops fetching from Kafka until it recovers, rather than
// fetch what it cannot write.
type throttledSink interface {
	Throttled() bool
}

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
	// Concurrency is the most sink calls in flight at once; default 16.
	// The worker adapts the number below it to the target (see limit).
	// Each call carries up to MaxBatch events of different keys, which a
	// sink may write in parallel itself.
	Concurrency int
	// MaxBatch bounds the events of one sink call; default 500.
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
	sink     Sink
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
func NewWorker(ctx context.Context, cl *kgo.Client, opts WorkerOptions, sink Sink) (*Worker, error) {
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

// throttled reports whether the sink's target is throttling it now.
func (w *Worker) throttled() bool {
	ts, ok := w.sink.(throttledSink)
	return ok && ts.Throttled()
}

// commit commits every partition's finished prefix that grew since the
// last commit. A failed commit is tried again with the next one; until
// then a restart applies those records again, which is harmless.
func (w *Worker) commit(ctx context.Context) {
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	ready := w.inflight.takeReady()
	if len(ready) == 0 {
		return
	}
	recs := make([]*kgo.Record, len(ready))
	for i, t := range ready {
		recs[i] = t.rec
	}
	if err := w.cl.CommitRecords(ctx, recs...); err != nil {
		w.inflight.putBack(ready)
		if ctx.Err() == nil {
			w.log.Warn("committing offsets failed, will be retried with the next commit", "err", err)
		}
		return
	}
	w.progress.advance(recs)
}

// revoked commits what is finished of partitions taken away from this
// worker, and forgets them: their records still being written finish
// without committing (the new owner applies them again, harmlessly).
func (w *Worker) revoked(ctx context.Context, parts map[string][]int32, lost bool) {
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	recs := w.inflight.drop(parts[w.opts.Topic])
	if lost || len(recs) == 0 {
		return
	}
	if err := w.cl.CommitRecords(ctx, recs...); err != nil {
		w.log.Warn("committing the offsets of revoked partitions failed; their new owner applies those records again", "err", err)
		return
	}
	w.progress.advance(recs)
}

// workers finds the Worker of a client in the group callbacks WorkerOpts
// installs (the client exists before its Worker does).
var workers sync.Map // *kgo.Client → *Worker

func onRevoked(lost bool) func(context.Context, *kgo.Client, map[string][]int32) {
	return func(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
		if w, ok := workers.Load(cl); ok {
			w.(*Worker).revoked(ctx, parts, lost)
		}
	}
}

// leave takes a static member out of the group when it stops on purpose,
// so its partitions move to other workers now rather than after the
// session timeout. (A dynamic member leaves by itself when its client
// closes; a static one does not, which is what lets a crashed worker
// come back to its partitions.)
func (w *Worker) leave(ctx context.Context) {
	if w.opts.InstanceID == "" {
		return
	}
	// ctx is done (we are stopping); the leave still deserves a moment.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	member, _ := w.cl.GroupMetadata()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = w.opts.Group
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = member
	m.InstanceID = &w.opts.InstanceID
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(ctx, w.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
		for _, r := range resp.Members {
			if err == nil {
				err = kerr.ErrorForCode(r.ErrorCode)
			}
		}
	}
	if err != nil {
		w.log.Warn("leaving the consumer group failed; its partitions move once the session times out", "err", err)
	}
}

// pauseIfThrottled pauses fetching while the sink's target throttles it,
// and resumes once it recovers. Records already fetched are still applied.
// Only Run's watcher goroutine calls it.
func (w *Worker) pauseIfThrottled() {
	ts, ok := w.sink.(throttledSink)
	if !ok {
		return
	}
	switch throttled := ts.Throttled(); {
	case throttled && !w.paused.Load():
		w.cl.PauseFetchTopics(w.opts.Topic)
		w.paused.Store(true)
		w.pauses.Add(1)
		w.log.Info("the target is throttling writes: fetching from Kafka paused until it recovers")
	case !throttled && w.paused.Load():
		w.cl.ResumeFetchTopics(w.opts.Topic)
		w.paused.Store(false)
		w.log.Info("the target recovered: fetching from Kafka resumed")
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

// applyJobs applies a batch of jobs, dead-letters what cannot be decoded
// or applied, and marks them finished. An error means some were not
// applied: they stay unfinished and are never committed.
func (w *Worker) applyJobs(ctx context.Context, jobs []job) error {
	start := time.Now()
	events := make([]pipeline.Event, 0, len(jobs))
	from := make([]*kgo.Record, 0, len(jobs)) // from[i] is the record of events[i]
	var dead []*kgo.Record
	var decodeErrors int64
	for _, j := range jobs {
		r := j.t.rec
		if j.decodeErr != nil {
			w.log.Warn("record cannot be decoded, sent to the dead-letter topic",
				"partition", r.Partition, "offset", r.Offset, "key", logKey(r.Key), "err", logText(j.decodeErr))
			dead = append(dead, w.deadLetter(r, ClassDecode, j.decodeErr, start))
			decodeErrors++
			continue
		}
		events = append(events, j.event)
		from = append(from, r)
	}

	var results []pipeline.Result
	if len(events) > 0 {
		var err error
		if results, err = w.sink.Apply(ctx, events); err != nil {
			return fmt.Errorf("apply batch of %d events: %w", len(events), err)
		}
		w.batches.Add(1)
		if len(results) != len(events) {
			return fmt.Errorf("sink returned %d results for %d events (a bug in the sink)", len(results), len(events))
		}
	}
	var applied, skipped, rejected int64
	now := time.Now()
	for i, res := range results {
		switch res.Outcome {
		case pipeline.Applied:
			applied++
			w.appliedByOp.add(events[i].Op, 1)
			if w.opts.ObserveLag != nil && !events[i].Source.Time.IsZero() {
				w.opts.ObserveLag(now.Sub(events[i].Source.Time))
			}
		case pipeline.SkippedOlder:
			skipped++
			w.skippedByOp.add(events[i].Op, 1)
		case pipeline.Rejected:
			rejected++
			if res.Err == nil {
				res.Err = fmt.Errorf("rejected by the sink without a reason (a bug in the sink)")
			}
			class := ClassTargetRejected
			if errors.Is(res.Err, pipeline.ErrUnmappable) {
				class = ClassUnmappable
			}
			r := from[i]
			w.log.Warn("event rejected by the target, sent to the dead-letter topic",
				"partition", r.Partition, "offset", r.Offset, "key", logKey(r.Key), "class", class, "err", logText(res.Err))
			dead = append(dead, w.deadLetter(r, class, res.Err, start))
		default:
			return fmt.Errorf("sink returned outcome %v for key %q (a bug in the sink)", res.Outcome, events[i].Key)
		}
	}

	if len(dead) > 0 {
		if err := w.produceDeadLetters(ctx, dead); err != nil {
			return fmt.Errorf("write %d records to dead-letter topic %s: %w (none of them was committed)",
				len(dead), w.opts.DeadLetterTopic, err)
		}
	}
	done := make([]*tracked, len(jobs))
	for i, j := range jobs {
		done[i] = j.t
	}
	w.inflight.finish(done...)
	w.applied.Add(applied)
	w.skipped.Add(skipped)
	w.rejected.Add(rejected)
	w.decodeErrors.Add(decodeErrors)
	w.deadLettered.Add(int64(len(dead)))
	return nil
}

// deadLetter makes the dead-letter record of r, small enough for the
// dead-letter topic: when r with the error headers would be larger than
// MaxDeadLetterBytes, the value is left out (and logged), and the key is
// cut if even that is not enough.
func (w *Worker) deadLetter(r *kgo.Record, class string, err error, now time.Time) *kgo.Record {
	d, shrunk := fitDeadLetter(sinkDeadLetter(w.opts.DeadLetterTopic, r, class, err, now), w.opts.MaxDeadLetterBytes)
	if shrunk {
		w.log.Warn("dead letter too large for the dead-letter topic: its value was left out; the original record stays in its topic until retention removes it",
			"partition", r.Partition, "offset", r.Offset, "key", logKey(r.Key), "value_bytes", len(r.Value), "limit", w.opts.MaxDeadLetterBytes)
	}
	return d
}

// produceDeadLetters writes the dead letters of a batch. A dead letter the
// topic refuses as too large (its max.message.bytes is below
// MaxDeadLetterBytes) is written again on its own, and if refused again,
// without its value and with its key and texts cut: one bad record must
// not stop the worker. Any other failure is returned.
func (w *Worker) produceDeadLetters(ctx context.Context, dead []*kgo.Record) error {
	w.deadMu.Lock()
	defer w.deadMu.Unlock()
	for _, res := range w.cl.ProduceSync(ctx, dead...) {
		if res.Err == nil {
			continue
		}
		if !isTooLarge(res.Err) {
			return res.Err
		}
		// Refused with others in one batch, or alone.
		err := w.cl.ProduceSync(ctx, res.Record).FirstErr()
		if err == nil {
			continue
		}
		if !isTooLarge(err) {
			return err
		}
		small := minimalDeadLetter(res.Record, err)
		if err := w.cl.ProduceSync(ctx, small).FirstErr(); err != nil {
			return fmt.Errorf("%w (the topic refuses even a %d-byte dead letter: raise its max.message.bytes)", err, recordBytes(small))
		}
		w.log.Warn("the dead-letter topic refused a dead letter as too large: written without its value (raise the dead-letter topic's max.message.bytes to keep whole dead letters)",
			"key", logKey(res.Record.Key), "bytes", recordBytes(res.Record), "err", err)
	}
	return nil
}

// isTooLarge reports whether Kafka (or franz-go, before sending) refused a
// record or batch for its size.
func isTooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}
