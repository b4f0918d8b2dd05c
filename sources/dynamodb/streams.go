package dynamodb

import (
	"context"
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
	"github.com/cutover/cutover/pipeline"
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

// iteratorLife is how long a saved iterator is used: less than the 15
// minutes DynamoDB Streams keeps one, for clocks. An expired one falls
// back to the trim horizon, skipping by From.
const iteratorLife = 13 * time.Minute

// creationRounding is how much a record's creation time may have been
// rounded down: DynamoDB rounds to the second, DynamoDB Local to the
// minute. A record is skipped only when it was surely created before
// skipBefore.
const creationRounding = time.Minute

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
