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
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/cenkalti/backoff/v4"

	"github.com/cutover/cutover/checkpoint"
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
	Endpoint     string
	Logger       *slog.Logger
}

// StreamStats count what live capture did.
type StreamStats struct {
	Records, Deletes int64
	Shards, Done     int64
	Gaps             int64
	// Age is how old the last record read was when it was read.
	Age time.Duration
}

// shardState is a shard's checkpoint: the last sequence number whose
// event (and every earlier one) Kafka acknowledged, and whether the shard
// is closed and read to its end.
type shardState struct {
	Seq  string `json:"seq,omitempty"`
	Done bool   `json:"done,omitempty"`
}

type streamPosition struct {
	StreamARN string                 `json:"stream_arn"`
	Shards    map[string]*shardState `json:"shards"`
	Updated   time.Time              `json:"updated"`
}

// Stream follows a table's stream.
type Stream struct {
	cl    *dynamodbstreams.Client
	table Table
	opts  StreamOptions
	pub   Publisher
	ck    checkpoint.Store
	log   *slog.Logger

	mu                                   sync.Mutex
	pos                                  streamPosition // durable positions
	dirty                                bool
	running                              map[string]bool    // shards being read
	latest                               map[string]*string // LATEST iterators taken before the scan, by shard
	parents                              map[string]string  // shard → parent
	gap                                  chan error         // a trimmed gap, for the source to heal
	records, deletes, shards, done, gaps atomic.Int64
	ageNanos                             atomic.Int64
}

// NewStream prepares live capture of table's stream.
func NewStream(cl *dynamodbstreams.Client, table Table, opts StreamOptions, pub Publisher, ck checkpoint.Store) *Stream {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	if opts.RefreshEvery <= 0 {
		opts.RefreshEvery = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Stream{cl: cl, table: table, opts: opts, pub: pub, ck: ck, log: opts.Logger,
		running: map[string]bool{}, latest: map[string]*string{}, parents: map[string]string{}, gap: make(chan error, 1)}
}

// Gaps delivers trimmed gaps; the source heals each with a re-scan.
func (st *Stream) Gaps() <-chan error { return st.gap }

// Stats returns the counters so far.
func (st *Stream) Stats() StreamStats {
	return StreamStats{Records: st.records.Load(), Deletes: st.deletes.Load(), Shards: st.shards.Load(),
		Done: st.done.Load(), Gaps: st.gaps.Load(), Age: time.Duration(st.ageNanos.Load())}
}

func (st *Stream) checkpointName() string {
	return fmt.Sprintf("%s/dynamodb/%s/stream", st.opts.Name, st.table.Name)
}

// Start loads the saved positions and, on a first run, takes a LATEST
// iterator on every open shard: the position before the scan starts.
// Shards without a saved position on a later run start at TRIM_HORIZON,
// which repeats records at worst (versions make that harmless).
func (st *Stream) Start(ctx context.Context) (firstRun bool, err error) {
	st.pos = streamPosition{StreamARN: st.table.StreamARN, Shards: map[string]*shardState{}}
	raw, err := st.ck.Load(ctx, st.checkpointName())
	switch {
	case errors.Is(err, checkpoint.ErrNotFound):
		firstRun = true
	case err != nil:
		return false, err
	default:
		var pos streamPosition
		if err := json.Unmarshal(raw, &pos); err != nil {
			return false, fmt.Errorf("stream checkpoint %s is corrupt: %w (delete it; the next run re-snapshots)", st.checkpointName(), err)
		}
		if pos.StreamARN != st.table.StreamARN {
			st.log.Warn("the table's stream changed since the last run (disabled and enabled again?): its positions do not apply; changes in between are healed by a re-scan",
				"saved", pos.StreamARN, "now", st.table.StreamARN)
			return false, ErrTrimmed
		}
		if pos.Shards != nil {
			st.pos = pos
		}
	}
	shards, err := st.listShards(ctx)
	if err != nil {
		return false, err
	}
	if firstRun {
		for _, sh := range shards {
			id := aws.ToString(sh.ShardId)
			if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
				st.pos.Shards[id] = &shardState{Done: true} // closed before we started: nothing of ours in it
				continue
			}
			it, err := st.iterator(ctx, id, streamtypes.ShardIteratorTypeLatest, "")
			if err != nil {
				return false, err
			}
			st.latest[id] = it
		}
		st.saveNow(ctx)
	}
	return firstRun, nil
}

// Run reads every shard until ctx ends or publishing fails.
func (st *Stream) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	defer wg.Wait()
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
		case <-refresh.C:
			shards, err := st.listShards(ctx)
			if err != nil {
				st.log.Warn("listing the stream's shards failed; retrying", "err", err)
				refresh.Reset(st.opts.RefreshEvery)
				continue
			}
			for _, sh := range st.ready(shards) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := st.readShard(ctx, sh); err != nil {
						cancel(err)
						return
					}
					finished <- aws.ToString(sh.ShardId)
				}()
			}
			refresh.Reset(st.opts.RefreshEvery)
		}
	}
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
	var it *string
	var err error
	switch {
	case saved != nil && saved.Seq != "":
		it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeAfterSequenceNumber, saved.Seq)
	case latest != nil:
		it = latest
	default:
		it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeTrimHorizon, "")
	}
	if err != nil {
		return st.shardErr(ctx, id, err)
	}
	lastSeq := ""
	if saved != nil {
		lastSeq = saved.Seq
	}
	idle := st.opts.PollInterval
	for it != nil {
		out, err := st.cl.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1000)})
		var expired *streamtypes.ExpiredIteratorException
		switch {
		case errors.As(err, &expired):
			// Iterators last 15 minutes: take a new one where we are.
			if lastSeq != "" {
				it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeAfterSequenceNumber, lastSeq)
			} else {
				it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeTrimHorizon, "")
			}
			if err != nil {
				return st.shardErr(ctx, id, err)
			}
			continue
		case err != nil:
			if e := st.shardErr(ctx, id, err); e != nil || ctx.Err() != nil {
				return e
			}
			continue // shardErr waited; try again
		}
		if len(out.Records) > 0 {
			idle = st.opts.PollInterval
			b, last, err := st.events(id, out.Records)
			if err != nil {
				return err
			}
			lastSeq = last
			seq := last
			if err := st.pub.Publish(ctx, b, func() { st.markDurable(id, seq, false) }); err != nil {
				return fmt.Errorf("stream shard %s: %w", id, err)
			}
		}
		it = out.NextShardIterator
		if it == nil {
			break // the shard is closed and read to its end
		}
		if len(out.Records) == 0 {
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

// events turns stream records into events.
func (st *Stream) events(shard string, recs []streamtypes.Record) (pipeline.Batch, string, error) {
	var b pipeline.Batch
	last := ""
	for _, r := range recs {
		d := r.Dynamodb
		if d == nil {
			continue
		}
		seq := aws.ToString(d.SequenceNumber)
		last = seq
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
			key, err := st.table.Key(dynamoattr.FromStreamItem(d.Keys))
			if err != nil {
				return b, "", fmt.Errorf("shard %s record %s: %w", shard, seq, err)
			}
			st.deletes.Add(1)
			b.Events = append(b.Events, pipeline.Event{Key: pipeline.EncodeItemKey(key), Op: pipeline.OpDelete,
				Origin: pipeline.OriginLive, Version: version, Source: src})
			continue
		}
		if d.NewImage == nil {
			return b, "", fmt.Errorf("shard %s record %s has no new image: the stream's view type must be NEW_IMAGE or NEW_AND_OLD_IMAGES", shard, seq)
		}
		e, err := st.table.event(dynamoattr.FromStreamItem(d.NewImage), version, pipeline.OriginLive, src)
		if err != nil {
			return b, "", fmt.Errorf("shard %s record %s: %w", shard, seq, err)
		}
		b.Events = append(b.Events, e)
	}
	return b, last, nil
}

// shardErr handles a failed call on a shard: a trimmed gap is reported to
// the source and the shard restarts at its trim horizon; other errors
// wait and return nil to retry, or return the error if ctx ended.
func (st *Stream) shardErr(ctx context.Context, id string, err error) error {
	var trimmed *streamtypes.TrimmedDataAccessException
	var missing *streamtypes.ResourceNotFoundException
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.As(err, &trimmed):
		st.gaps.Add(1)
		st.log.Error("GAP: stream records were trimmed before cutover read them; the changes they held are lost to the stream and will be healed by a re-scan of the table",
			"shard", id, "err", err)
		st.mu.Lock()
		st.pos.Shards[id] = &shardState{} // start over at the trim horizon
		st.dirty = true
		st.mu.Unlock()
		select {
		case st.gap <- fmt.Errorf("%w: shard %s", ErrTrimmed, id):
		default:
		}
		return nil
	case errors.As(err, &missing):
		st.log.Warn("shard is gone (aged out of the stream)", "shard", id)
		st.markDurable(id, "", true)
		return nil
	}
	st.log.Warn("stream call failed, retrying", "shard", id, "err", err)
	sources.Sleep(ctx, time.Second)
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
func (st *Stream) listShards(ctx context.Context) ([]streamtypes.Shard, error) {
	var shards []streamtypes.Shard
	var start *string
	bo := backoff.WithContext(backoff.NewExponentialBackOff(), ctx)
	for {
		var out *dynamodbstreams.DescribeStreamOutput
		err := backoff.Retry(func() error {
			var err error
			out, err = st.cl.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(st.table.StreamARN), ExclusiveStartShardId: start})
			var limit *streamtypes.LimitExceededException
			if err != nil && !errors.As(err, &limit) {
				return backoff.Permanent(err)
			}
			return err
		}, bo)
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
