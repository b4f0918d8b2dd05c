package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/internal/retry"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/dynamoattr"
	"github.com/cutover/cutover/sources"
)

// ErrTrimmed means stream records were trimmed (older than the stream's
// 24 hours) before cutover read them: changes were lost to the stream.
var ErrTrimmed = errors.New("stream records were trimmed before they were read")

// StreamOptions configure live capture.
type StreamOptions struct {
	Name string
	// Epoch is the pipeline's version epoch.
	Epoch *pipeline.Epoch
	// PollInterval is the pause after an empty GetRecords; it grows to 4×
	// while a shard stays quiet. Default 250ms (DynamoDB Streams allows 5
	// GetRecords per second per shard).
	PollInterval time.Duration
	// RefreshEvery is how often shards are listed again; default 10s.
	RefreshEvery time.Duration
	// Retention is how long the stream keeps records; default 24h, as
	// DynamoDB Streams does. Saved positions older than it (less an hour's
	// margin for clocks) may point past trimmed records: a gap.
	Retention time.Duration
	// Settle is how long after its write a record is assumed to be
	// readable in the stream, clock differences and rounding included;
	// default 15s (see shardState.From).
	Settle time.Duration
	// OnGap records that changes may be missing from the stream (a heal is
	// needed). It is called before the stream forgets the position that
	// can no longer be read, and must make the need durable: an error
	// stops live capture.
	OnGap    func(ctx context.Context, reason string) error
	Endpoint string
	Logger   *slog.Logger
}

// streamsAPI is what live capture calls of DynamoDB Streams;
// *dynamodbstreams.Client implements it.
type streamsAPI interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// StreamStats count what live capture did.
type StreamStats struct {
	Records, Deletes int64
	// Rereads are records without a usable new image whose item was read
	// from the table instead.
	Rereads int64
	// Skipped are records read again from a shard's trim horizon that
	// precede its saved position (see shardState.From): not published.
	Skipped      int64
	Shards, Done int64
	Gaps         int64
	// Age is how old the last record read was when it was read.
	Age time.Duration
}

// shardState is a shard's checkpoint: the last sequence number whose
// event (and every earlier one) Kafka acknowledged, and whether the shard
// is closed and read to its end.
type shardState struct {
	Seq  string `json:"seq,omitempty"`
	Done bool   `json:"done,omitempty"`
	// Since, for a shard without Seq, is when its position was taken as
	// "from the trim horizon": opened later than the stream's retention
	// after it, records since may be trimmed — a gap.
	Since time.Time `json:"since,omitzero"`
	// From, for a shard without Seq whose position was taken at its end
	// (LATEST) rather than at its start, is the last time the shard was
	// seen holding no record after that position: refreshed by every
	// empty read. A LATEST iterator cannot be saved, so such a shard is
	// opened again at its trim horizon, and the records created before
	// From (less StreamOptions.Settle) are skipped: a record created
	// more than Settle before an empty read of its shard that the read did
	// not return was in the shard before the position was taken: they precede the position,
	// and re-applied over the rows of a scan that read newer states they
	// would move keys backwards. Zero for a shard all of whose records
	// are to be read (a child of a shard read to its end, a gap).
	From time.Time `json:"from,omitzero"`
	// Iterator, for such a shard, is the iterator its last empty read
	// returned, at IteratorAt: it continues exactly at the position while
	// it is valid (DynamoDB Streams keeps an iterator 15 minutes), so a
	// restart soon after reads neither less nor more than it must.
	Iterator   string    `json:"iterator,omitempty"`
	IteratorAt time.Time `json:"iterator_at,omitzero"`
}

// iteratorLife is how long a saved iterator is used: less than the 15
// minutes DynamoDB Streams keeps one, for clocks. An expired one falls
// back to the trim horizon, skipping by From.
const iteratorLife = 13 * time.Minute

// creationRounding is how much a record's creation time may have been
// rounded down: DynamoDB rounds to the second, DynamoDB Local to the
// minute. A record is skipped only when it was surely created before
// skipBefore.
const creationRounding = time.Minute

// streamPosition is the stream's checkpoint. A shard without a saved
// sequence number is read from its trim horizon; Updated says when the
// positions were last known to be readable (saved every second while the
// stream runs, and when a backfill takes them).
type streamPosition struct {
	StreamARN string                 `json:"stream_arn"`
	Shards    map[string]*shardState `json:"shards"`
	Updated   time.Time              `json:"updated"`
}

// itemAPI reads one item; *dynamodb.Client implements it.
type itemAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// errStreamChanged means the table's stream is another one than the
// Stream follows: it was disabled and enabled again. The gap is recorded;
// the caller starts a new Stream on the new one.
var errStreamChanged = errors.New("the table's stream changed")

// Stream follows a table's stream.
type Stream struct {
	cl    streamsAPI
	items itemAPI // reads an item whose record has no usable image
	table Table
	opts  StreamOptions
	pub   pipeline.Publisher
	ck    checkpoint.Store
	log   *slog.Logger

	mu                                   sync.Mutex
	pos                                  streamPosition // durable positions
	dirty                                bool
	running                              map[string]bool    // shards being read
	latest                               map[string]*string // LATEST iterators taken before the scan, by shard
	tookLatest                           map[string]bool    // shards whose position this run took at LATEST
	parents                              map[string]string  // shard → parent
	firstRun                             bool               // Start found no checkpoint
	started                              time.Time          // when Start ran
	records, deletes, shards, done, gaps atomic.Int64
	rereads, skipped                     atomic.Int64
	ageNanos                             atomic.Int64

	// For a drain (see caughtUp): when the last listing of the shards
	// that succeeded began and what it listed, and for each shard being
	// read the moment up to which it is read: when its last read that
	// found no more records began, or when the last record handed over
	// was created.
	listedAt time.Time
	listed   []string
	readTo   map[string]time.Time
	// relist asks Run to list the shards now; buffered 1.
	relist chan struct{}
}

// NewStream prepares live capture of table's stream.
func NewStream(cl streamsAPI, items itemAPI, table Table, opts StreamOptions, pub pipeline.Publisher, ck checkpoint.Store) *Stream {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	if opts.RefreshEvery <= 0 {
		opts.RefreshEvery = 10 * time.Second
	}
	if opts.Retention <= 0 {
		opts.Retention = 24 * time.Hour
	}
	if opts.Settle <= 0 {
		opts.Settle = 15 * time.Second
	}
	if opts.OnGap == nil {
		opts.OnGap = func(context.Context, string) error { return nil }
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Stream{cl: cl, items: items, table: table, opts: opts, pub: pub, ck: ck, log: opts.Logger,
		running: map[string]bool{}, latest: map[string]*string{}, tookLatest: map[string]bool{}, parents: map[string]string{},
		readTo: map[string]time.Time{}, relist: make(chan struct{}, 1)}
}

// FirstRun reports whether Start found no saved positions.
func (st *Stream) FirstRun() bool { return st.firstRun }

// Stats returns the counters so far.
func (st *Stream) Stats() StreamStats {
	return StreamStats{Records: st.records.Load(), Deletes: st.deletes.Load(), Rereads: st.rereads.Load(), Skipped: st.skipped.Load(), Shards: st.shards.Load(),
		Done: st.done.Load(), Gaps: st.gaps.Load(), Age: time.Duration(st.ageNanos.Load())}
}

func (st *Stream) checkpointName() string {
	return fmt.Sprintf("%s/dynamodb/%s/stream", st.opts.Name, st.table.Name)
}

// Start loads the saved positions. Without any (a first run), or when
// they can no longer be read — the stream was disabled and enabled again
// (a new stream ARN), or they are older than the stream's retention — it
// takes a LATEST iterator on every open shard: the position before the
// scan (or heal) starts. gap says why saved positions were unusable;
// the caller must heal it.
func (st *Stream) Start(ctx context.Context) (gap string, err error) {
	st.started = time.Now().UTC()
	pos, found, err := st.load(ctx)
	if err != nil {
		return "", err
	}
	switch {
	case !found:
		st.firstRun = true
	case pos.StreamARN != st.table.StreamARN:
		gap = fmt.Sprintf("the table's stream changed since the last run (disabled and enabled again?): saved %s, now %s", pos.StreamARN, st.table.StreamARN)
	case st.stale(pos):
		gap = fmt.Sprintf("the stream's positions were saved %s ago, longer than the stream keeps records (%s): some may be trimmed",
			time.Since(pos.Updated).Round(time.Minute), st.opts.Retention)
	default:
		st.pos = pos
		return "", nil
	}
	if gap != "" {
		st.gaps.Add(1)
		// The caller records the gap before anything is saved over the old
		// positions: Run saves, Start does not.
		if err := st.opts.OnGap(ctx, gap); err != nil {
			return "", err
		}
	}
	if err := st.takeLatest(ctx); err != nil {
		return "", err
	}
	return gap, nil
}

// stale reports whether saved positions may point past trimmed records.
func (st *Stream) stale(pos streamPosition) bool {
	return !pos.Updated.IsZero() && time.Since(pos.Updated) > st.opts.Retention-time.Hour
}

// takeLatest starts from now: a LATEST iterator on every open shard,
// closed shards done (nothing in them is newer than now), and saves that.
func (st *Stream) takeLatest(ctx context.Context) error {
	st.pos = streamPosition{StreamARN: st.table.StreamARN, Shards: map[string]*shardState{}}
	shards, err := st.listShards(ctx)
	if err != nil {
		return err
	}
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
			st.pos.Shards[id] = &shardState{Done: true} // closed before we started: nothing of ours in it
			continue
		}
		it, err := st.iterator(ctx, id, streamtypes.ShardIteratorTypeLatest, "")
		if err != nil {
			return err
		}
		st.latest[id] = it
		st.tookLatest[id] = true
		// A restart before a record is read goes from the trim horizon,
		// skipping what was there before now.
		now := time.Now().UTC()
		st.pos.Shards[id] = &shardState{Since: now, From: now}
	}
	st.saveNow(ctx)
	return nil
}

// settle returns once the positions saved for every open shard are
// exact for a later run: the shard has a saved sequence number, or it was
// read empty for Settle after this run took or loaded its position
// (its From is that late), so that no record created before the position
// is read again from its trim horizon. A backfill calls it after its scan,
// while Run still reads; a busy table settles at once, an idle one within
// Settle. It returns early when ctx ends.
func (st *Stream) settle(ctx context.Context, stopped <-chan struct{}) {
	tick := time.NewTicker(st.opts.PollInterval)
	defer tick.Stop()
	// A shard that cannot be read (the stream disabled meanwhile, say)
	// never settles: give up after the wait and as long again, and say so.
	wait := max(time.Until(st.started.Add(st.opts.Settle)), 0) + st.opts.Settle + 30*time.Second
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		var open []string
		st.mu.Lock()
		for id, sh := range st.pos.Shards {
			// Only a position this run took at a shard's end is waited
			// for; one loaded (read again from the trim horizon) keeps
			// the From it was saved with.
			if st.tookLatest[id] && !sh.Done && sh.Seq == "" && !sh.From.IsZero() && sh.From.Before(st.started.Add(st.opts.Settle)) {
				open = append(open, id)
			}
		}
		st.mu.Unlock()
		if len(open) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-stopped:
			return
		case <-deadline.C:
			st.log.Warn("some stream shards could not be read to confirm their positions; a replicate may apply again changes made up to this long before the backfill began",
				"shards", open, "settle", st.opts.Settle)
			return
		case <-tick.C:
		}
	}
}

func (st *Stream) load(ctx context.Context) (streamPosition, bool, error) {
	var pos streamPosition
	raw, err := st.ck.Load(ctx, st.checkpointName())
	switch {
	case errors.Is(err, checkpoint.ErrNotFound):
		return pos, false, nil
	case err != nil:
		return pos, false, err
	}
	if err := json.Unmarshal(raw, &pos); err != nil {
		return pos, false, fmt.Errorf("stream checkpoint %s is corrupt: %w (delete it; the next run re-snapshots)", st.checkpointName(), err)
	}
	if pos.Shards == nil {
		pos.Shards = map[string]*shardState{}
	}
	return pos, true, nil
}

// Run reads every shard until ctx ends or publishing fails.
func (st *Stream) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		// Stop the shard readers, then wait for them (and save what they
		// made durable): Run may return while its own ctx is alive.
		cancel(nil)
		wg.Wait()
		st.saveNow(context.WithoutCancel(ctx))
	}()
	saveT := time.NewTicker(time.Second)
	defer saveT.Stop()
	refresh := time.NewTimer(0)
	defer refresh.Stop()
	finished := make(chan string, 16)
	for {
		select {
		case <-ctx.Done():
			st.saveNow(context.WithoutCancel(ctx))
			if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		case <-saveT.C:
			st.saveNow(ctx)
		case id := <-finished:
			st.mu.Lock()
			delete(st.running, id)
			st.mu.Unlock()
			refresh.Reset(0) // its children may start now
		case <-st.relist:
			refresh.Reset(0)
		case <-refresh.C:
			asked := time.Now().UTC()
			if err := st.checkARN(ctx); err != nil {
				return err
			}
			shards, err := st.listShards(ctx)
			if err != nil {
				st.log.Warn("listing the stream's shards failed; retrying", "err", err)
				refresh.Reset(st.opts.RefreshEvery)
				continue
			}
			st.sawListing(asked, shards)
			if err := st.vanished(ctx, shards); err != nil {
				return err
			}
			for _, sh := range st.ready(shards) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := st.readShard(ctx, sh); err != nil {
						cancel(err)
						return
					}
					select { // Run may have returned: never block on it
					case finished <- aws.ToString(sh.ShardId):
					case <-ctx.Done():
					}
				}()
			}
			refresh.Reset(st.opts.RefreshEvery)
		}
	}
}

// checkARN looks whether the table still has the stream being read. A
// stream disabled and enabled again is a new stream: what was written in
// between is in neither, a gap. errStreamChanged tells the caller to
// follow the new one; the new Stream's Start records the gap, after it has
// taken its position, so that the heal's scan starts after it. While the
// stream is off nothing is captured: the gap is recorded at once (a crash
// must not forget it) and checkARN waits for a stream to read again. A
// failed look is only logged.
func (st *Stream) checkARN(ctx context.Context) error {
	describer, ok := st.items.(scanAPI)
	if !ok {
		return nil
	}
	recorded := false
	for {
		arn, _, err := currentStream(ctx, describer, st.table.Name)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				st.log.Warn("reading the table's stream settings failed; retrying", "err", err)
			}
			return nil
		case arn == st.table.StreamARN:
			return nil
		case arn != "":
			return errStreamChanged
		case !recorded:
			st.gaps.Add(1)
			if err := st.opts.OnGap(ctx, "the table's stream was disabled: changes are not captured until it is enabled again"); err != nil {
				return err
			}
			recorded = true
		}
		if !sources.Sleep(ctx, st.opts.RefreshEvery) {
			return nil
		}
	}
}

// vanished finds saved shards that are not read to their end and that the
// stream no longer lists: they aged out (cutover was stopped for longer
// than the stream's retention) with records cutover never read — a gap.
// Each is recorded as a gap before it is marked done.
func (st *Stream) vanished(ctx context.Context, shards []streamtypes.Shard) error {
	listed := make(map[string]bool, len(shards))
	for _, sh := range shards {
		listed[aws.ToString(sh.ShardId)] = true
	}
	st.mu.Lock()
	var gone []string
	for id, s := range st.pos.Shards {
		if !s.Done && !listed[id] && !st.running[id] {
			gone = append(gone, id)
		}
	}
	st.mu.Unlock()
	for _, id := range gone {
		if err := st.lost(ctx, id, "the stream no longer lists it (it aged out before it was read to its end)", true); err != nil {
			return err
		}
	}
	return nil
}

// lost records a gap on shard id and then forgets its position: the shard
// is done (gone), or is read again from its trim horizon.
func (st *Stream) lost(ctx context.Context, id, why string, gone bool) error {
	st.gaps.Add(1)
	st.log.Error("GAP: stream records were lost before cutover read them; the changes they held will be healed by a re-scan of the table",
		"shard", id, "why", why)
	if err := st.opts.OnGap(ctx, fmt.Sprintf("shard %s: %s", id, why)); err != nil {
		return fmt.Errorf("stream shard %s: %w", id, err)
	}
	st.mu.Lock()
	st.pos.Shards[id] = &shardState{Done: gone, Since: time.Now().UTC()}
	st.dirty = true
	st.mu.Unlock()
	return nil
}

// ready picks the shards to start: not done, not running, and whose parent
// is done or gone (a parent older than the stream's retention disappears).
func (st *Stream) ready(shards []streamtypes.Shard) []streamtypes.Shard {
	st.mu.Lock()
	defer st.mu.Unlock()
	listed := map[string]bool{}
	for _, sh := range shards {
		listed[aws.ToString(sh.ShardId)] = true
		st.parents[aws.ToString(sh.ShardId)] = aws.ToString(sh.ParentShardId)
	}
	var out []streamtypes.Shard
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		if st.running[id] || (st.pos.Shards[id] != nil && st.pos.Shards[id].Done) {
			continue
		}
		if p := aws.ToString(sh.ParentShardId); p != "" && listed[p] && (st.pos.Shards[p] == nil || !st.pos.Shards[p].Done) {
			continue // a parent shard is read to its end before its children
		}
		st.running[id] = true
		if st.pos.Shards[id] == nil {
			// First seen now (a child of a shard read to its end).
			st.pos.Shards[id] = &shardState{Since: time.Now().UTC()}
			st.dirty = true
		}
		st.shards.Add(1)
		out = append(out, sh)
	}
	return out
}

// readShard reads one shard to its end (or until ctx ends).
func (st *Stream) readShard(ctx context.Context, sh streamtypes.Shard) error {
	id := aws.ToString(sh.ShardId)
	log := st.log.With("shard", id)
	st.mu.Lock()
	saved := st.pos.Shards[id]
	latest := st.latest[id]
	delete(st.latest, id)
	st.mu.Unlock()
	if latest == nil && saved != nil && saved.Seq == "" && !saved.Done && !saved.Since.IsZero() &&
		time.Since(saved.Since) > st.opts.Retention-time.Hour {
		// From the trim horizon, taken so long ago that records after it
		// may be trimmed already (the shard could not be read for a day,
		// or cutover was stopped).
		if err := st.lost(ctx, id, fmt.Sprintf("its position was taken %s ago, longer than the stream keeps records",
			time.Since(saved.Since).Round(time.Minute)), false); err != nil {
			return err
		}
	}
	// The pace of the retries of the shard's failed calls: a stream is
	// read until stopped, so it never gives up.
	failures := retry.New(0, retry.Initial(500*time.Millisecond), retry.Max(30*time.Second))
	var it *string
	var skipBefore time.Time // records created before it precede the position
	// An empty read proves nothing about the records after the position
	// unless the chain started at it (LATEST): from the trim horizon,
	// GetRecords may answer empty pages before it reaches any record.
	atPosition := latest != nil
	for {
		var err error
		switch {
		case saved != nil && saved.Seq != "":
			it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeAfterSequenceNumber, saved.Seq)
		case latest != nil:
			it = latest
		case saved != nil && saved.Iterator != "" && time.Since(saved.IteratorAt) < iteratorLife:
			it, atPosition = aws.String(saved.Iterator), true
		default:
			if saved != nil && !saved.From.IsZero() {
				skipBefore = saved.From.Add(-st.opts.Settle)
			}
			it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeTrimHorizon, "")
		}
		if err == nil {
			break
		}
		if isGap(err) {
			return st.shardErr(ctx, id, err) // recorded; the shard starts again at its trim horizon, or is done
		}
		if e := st.shardErr(ctx, id, err); e != nil || ctx.Err() != nil {
			return e
		}
		if !sources.Sleep(ctx, failures.NextBackOff()) {
			return nil
		}
	}
	lastSeq := ""
	if saved != nil {
		lastSeq = saved.Seq
	}
	idle := st.opts.PollInterval
	failures.Reset()
	empties := 0 // empty reads in a row
	for it != nil {
		asked := time.Now().UTC()
		out, err := st.cl.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1000)})
		var expired *streamtypes.ExpiredIteratorException
		var trimmed *streamtypes.TrimmedDataAccessException
		switch {
		case errors.As(err, &expired):
			// Iterators last 15 minutes: take a new one where we are.
			if lastSeq != "" {
				it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeAfterSequenceNumber, lastSeq)
			} else {
				skipBefore, atPosition = st.from(id), false
				it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeTrimHorizon, "")
			}
			if err != nil {
				return st.shardErr(ctx, id, err)
			}
			continue
		case errors.As(err, &trimmed):
			// Records past the iterator were trimmed before we read them:
			// a gap, then on from what the shard still holds.
			if err := st.lost(ctx, id, "its records were trimmed before cutover read them", false); err != nil {
				return err
			}
			lastSeq, skipBefore, atPosition = "", time.Time{}, false
			if it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeTrimHorizon, ""); err != nil {
				return st.shardErr(ctx, id, err)
			}
			continue
		case err != nil:
			if e := st.shardErr(ctx, id, err); e != nil || ctx.Err() != nil {
				return e
			}
			if !sources.Sleep(ctx, failures.NextBackOff()) {
				return nil
			}
			continue
		}
		failures.Reset()
		if len(out.Records) > 0 {
			idle, empties = st.opts.PollInterval, 0
			b, last, err := st.events(ctx, id, out.Records, skipBefore)
			if err != nil {
				return err
			}
			lastSeq = last
			seq := last
			if err := st.pub.Publish(ctx, b, func() { st.markDurable(id, seq, false) }); err != nil {
				return fmt.Errorf("stream shard %s: %w", id, err)
			}
			// A shard's records are in the order of their writes: every
			// record written before this one's creation is read too.
			if c := out.Records[len(out.Records)-1].Dynamodb; c != nil && c.ApproximateCreationDateTime != nil {
				st.caughtUpAt(id, *c.ApproximateCreationDateTime)
			}
		}
		it = out.NextShardIterator
		if it == nil {
			break // the shard is closed and read to its end
		}
		if len(out.Records) == 0 {
			if lastSeq == "" && atPosition {
				st.readEmpty(id, asked, out.NextShardIterator)
			}
			// From the trim horizon, GetRecords may answer empty pages
			// before it reaches the shard's records: an empty read says
			// the shard is read up to now only once the chain has met
			// records or stands at its position, or after several empty
			// pages in a row.
			if empties++; lastSeq != "" || atPosition || empties >= 3 {
				st.caughtUpAt(id, asked)
			}
			if !sources.Sleep(ctx, idle) {
				return nil
			}
			idle = min(2*idle, 4*st.opts.PollInterval)
		}
	}
	// Closed: once everything published is durable, its children may start.
	if err := st.pub.Publish(ctx, pipeline.Batch{}, func() { st.markDurable(id, lastSeq, true) }); err != nil {
		return err
	}
	st.done.Add(1)
	log.Info("shard read to its end")
	return nil
}

// from is the time before which (less Settle) shard id's records
// precede its position; zero when every record is to be read.
func (st *Stream) from(id string) time.Time {
	st.mu.Lock()
	defer st.mu.Unlock()
	if sh := st.pos.Shards[id]; sh != nil && sh.Seq == "" && !sh.From.IsZero() {
		return sh.From.Add(-st.opts.Settle)
	}
	return time.Time{}
}

// readEmpty records that shard id, of which no record was read yet, held
// none after its position when asked at asked: its From moves there.
func (st *Stream) readEmpty(id string, asked time.Time, next *string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if sh := st.pos.Shards[id]; sh != nil && sh.Seq == "" && !sh.From.IsZero() && asked.After(sh.From) {
		sh.From = asked
		sh.Iterator, sh.IteratorAt = aws.ToString(next), asked
		st.dirty = true
	}
}

// events turns stream records into events. Records created before
// skipBefore precede the shard's position (see shardState.From) and are
// skipped; the last sequence number counts them all.
func (st *Stream) events(ctx context.Context, shard string, recs []streamtypes.Record, skipBefore time.Time) (pipeline.Batch, string, error) {
	var b pipeline.Batch
	last := ""
	for _, r := range recs {
		d := r.Dynamodb
		if d == nil {
			continue
		}
		seq := aws.ToString(d.SequenceNumber)
		last = seq
		if t := d.ApproximateCreationDateTime; t != nil && t.Add(creationRounding).Before(skipBefore) {
			st.skipped.Add(1)
			continue
		}
		version, err := pipeline.SequenceVersion(st.opts.Epoch.Load(), seq)
		if err != nil {
			return b, "", fmt.Errorf("shard %s: %w", shard, err)
		}
		src := pipeline.SourceInfo{Connector: "dynamodb", Name: st.opts.Name, Table: st.table.Name, Node: shard, Position: []byte(seq)}
		if t := d.ApproximateCreationDateTime; t != nil {
			src.Time = *t
			st.ageNanos.Store(int64(time.Since(*t)))
		}
		st.records.Add(1)
		if r.EventName == streamtypes.OperationTypeRemove {
			if err := st.table.addDelete(&b, dynamoattr.FromStreamItem(d.Keys), version, src); err != nil {
				return b, "", fmt.Errorf("shard %s record %s: %w", shard, seq, err)
			}
			st.deletes.Add(1)
			continue
		}
		image, ok := dynamoattr.FromStreamImage(d.NewImage)
		if !ok {
			// No new image, or one with a value no attribute type names
			// (DynamoDB Local writes an empty map so): the record says the
			// item changed but not what it holds now. Read it.
			if image, err = st.reread(ctx, d.Keys); err != nil {
				return b, "", fmt.Errorf("shard %s record %s (%s) has no usable new image, and reading the item failed: %w", shard, seq, r.EventName, err)
			}
			st.rereads.Add(1)
			if image == nil {
				if err := st.table.addDelete(&b, dynamoattr.FromStreamItem(d.Keys), version, src); err != nil {
					return b, "", fmt.Errorf("shard %s record %s: %w", shard, seq, err)
				}
				continue
			}
		}
		if err := st.table.add(&b, image, version, pipeline.OriginLive, src); err != nil {
			return b, "", fmt.Errorf("shard %s record %s: %w", shard, seq, err)
		}
	}
	return b, last, nil
}

// reread reads an item whose stream record carries no usable image, with
// a strongly consistent read: its state now, at least as new as the
// record's (a change after it is a later record, with a greater sequence
// number). nil means the item is gone.
func (st *Stream) reread(ctx context.Context, keys map[string]streamtypes.AttributeValue) (map[string]pipeline.Attr, error) {
	if st.items == nil {
		return nil, fmt.Errorf("the stream's view type must be NEW_IMAGE or NEW_AND_OLD_IMAGES")
	}
	key, err := st.table.Key(dynamoattr.FromStreamItem(keys))
	if err != nil {
		return nil, err
	}
	out, err := st.items.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table.Name), Key: dynamoattr.Key(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, explain(st.opts.Endpoint, err)
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return dynamoattr.FromItem(out.Item), nil
}

// isGap reports whether err says records were lost to the stream.
func isGap(err error) bool {
	var trimmed *streamtypes.TrimmedDataAccessException
	var missing *streamtypes.ResourceNotFoundException
	return errors.As(err, &trimmed) || errors.As(err, &missing)
}

// shardErr handles a failed call on a shard: records trimmed before they
// were read, or a shard that is gone, is a gap (recorded, then the shard
// restarts at its trim horizon, or is done); other errors are logged and
// nil is returned so that the caller waits and tries again. An error is
// returned when the gap cannot be recorded, or ctx ended (nil then).
func (st *Stream) shardErr(ctx context.Context, id string, err error) error {
	var trimmed *streamtypes.TrimmedDataAccessException
	var missing *streamtypes.ResourceNotFoundException
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.As(err, &trimmed):
		return st.lost(ctx, id, "its records were trimmed before cutover read them", false)
	case errors.As(err, &missing):
		return st.lost(ctx, id, "the stream no longer has it (it aged out before it was read to its end)", true)
	}
	st.log.Warn("stream call failed, retrying", "shard", id, "err", err)
	return nil
}

func (st *Stream) iterator(ctx context.Context, shard string, typ streamtypes.ShardIteratorType, seq string) (*string, error) {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(st.table.StreamARN), ShardId: aws.String(shard), ShardIteratorType: typ}
	if seq != "" {
		in.SequenceNumber = aws.String(seq)
	}
	out, err := st.cl.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("shard iterator for %s: %w", shard, err)
	}
	return out.ShardIterator, nil
}

// listShards lists every shard of the stream (DescribeStream is paged).
// The SDK's retryer owns retries of throttling (LimitExceededException).
func (st *Stream) listShards(ctx context.Context) ([]streamtypes.Shard, error) {
	var shards []streamtypes.Shard
	var start *string
	for {
		out, err := st.cl.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(st.table.StreamARN), ExclusiveStartShardId: start})
		if err != nil {
			return nil, fmt.Errorf("describe stream of %s: %w", st.table.Name, explain(st.opts.Endpoint, err))
		}
		shards = append(shards, out.StreamDescription.Shards...)
		start = out.StreamDescription.LastEvaluatedShardId
		if start == nil {
			return shards, nil
		}
	}
}

func (st *Stream) markDurable(id, seq string, done bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.pos.Shards[id]
	if s == nil {
		s = &shardState{}
		st.pos.Shards[id] = s
	}
	if seq != "" {
		s.Seq = seq
	}
	s.Done = s.Done || done
	st.dirty = true
}

func (st *Stream) saveNow(ctx context.Context) {
	st.mu.Lock()
	pos := streamPosition{StreamARN: st.pos.StreamARN, Shards: map[string]*shardState{}, Updated: time.Now().UTC()}
	for k, v := range st.pos.Shards {
		c := *v
		pos.Shards[k] = &c
	}
	st.dirty = false
	st.mu.Unlock()
	raw, err := json.Marshal(pos)
	if err == nil {
		err = st.ck.Save(ctx, st.checkpointName(), raw)
	}
	if err != nil && ctx.Err() == nil {
		st.log.Warn("saving the stream checkpoint failed", "err", err)
	}
}
