package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/dynamoattr"
)

// scanAPI is what the snapshot calls of DynamoDB; *dynamodb.Client
// implements it.
type scanAPI interface {
	itemAPI
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// ScanOptions configure the snapshot.
type ScanOptions struct {
	// Name is the pipeline's name.
	Name string
	// Segments scanned in parallel; default 4.
	Segments int
	// PageSize is the most items per Scan call; 0 leaves it to DynamoDB
	// (1 MB pages).
	PageSize int32
	// ConsistentRead asks for strongly consistent pages (twice the read
	// capacity).
	ConsistentRead bool
	// ReadCapacityPerSecond paces the scan by the read capacity it
	// consumes (ReturnConsumedCapacity), to leave the table's capacity to
	// production; 0 means no limit.
	ReadCapacityPerSecond float64
	// Restart ignores a saved, unfinished scan and starts over.
	Restart bool
	// Epoch is the pipeline's version epoch.
	Epoch *pipeline.Epoch
	// Endpoint is only used in messages.
	Endpoint string
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// ScanProgress counts what a scan has done.
type ScanProgress struct {
	// Total is the table's item count as DynamoDB last reported it (it is
	// refreshed about every six hours, so it is an estimate).
	Total int64
	// Items read and published.
	Items int64
	// ReadCapacity consumed.
	ReadCapacity float64
	Resumed      bool
	Done         bool
}

// scanPosition is the checkpoint of a scan: each segment's last evaluated
// key (DynamoDB JSON), or done.
type scanPosition struct {
	// Epoch is the version epoch the scan reads at: a scan is resumed only
	// in its own epoch (rows read before a stop carry it).
	Epoch    uint64            `json:"epoch,omitempty"`
	Segments int               `json:"segments"`
	Last     []json.RawMessage `json:"last"`
	Done     []bool            `json:"done"`
	Items    int64             `json:"items"`
	Finished bool              `json:"finished"`
	Updated  time.Time         `json:"updated"`
}

// Scan snapshots a table with a parallel Scan.
type Scan struct {
	db    scanAPI
	table Table
	opts  ScanOptions
	pub   pipeline.Publisher
	ck    checkpoint.Store
	log   *slog.Logger
	pace  *rate.Limiter

	items    atomic.Int64
	total    atomic.Int64
	rcu      atomic.Uint64 // float64 bits
	resumed  atomic.Bool
	finished atomic.Bool

	mu      sync.Mutex
	durable scanPosition
	dirty   bool
}

// NewScan prepares a snapshot of table.
func NewScan(db scanAPI, table Table, opts ScanOptions, pub pipeline.Publisher, ck checkpoint.Store) *Scan {
	if opts.Segments <= 0 {
		opts.Segments = 4
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Scan{db: db, table: table, opts: opts, pub: pub, ck: ck, log: opts.Logger}
	if opts.ReadCapacityPerSecond > 0 {
		s.pace = rate.NewLimiter(rate.Limit(opts.ReadCapacityPerSecond), max(1, int(math.Ceil(opts.ReadCapacityPerSecond))))
	}
	return s
}

// CheckpointName is where the scan keeps its positions.
func (s *Scan) CheckpointName() string {
	return fmt.Sprintf("%s/dynamodb/%s/scan", s.opts.Name, s.table.Name)
}

// Progress returns the counters so far.
func (s *Scan) Progress() ScanProgress {
	return ScanProgress{Total: s.total.Load(), Items: s.items.Load(), ReadCapacity: math.Float64frombits(s.rcu.Load()),
		Resumed: s.resumed.Load(), Done: s.finished.Load()}
}

// Status reports whether a previous scan finished (or is half done).
func (s *Scan) Status(ctx context.Context) (exists, finished bool, err error) {
	pos, err := s.load(ctx)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return true, pos.Finished, nil
}

func (s *Scan) load(ctx context.Context) (scanPosition, error) {
	raw, err := s.ck.Load(ctx, s.CheckpointName())
	if err != nil {
		return scanPosition{}, err
	}
	var pos scanPosition
	if err := json.Unmarshal(raw, &pos); err != nil {
		return pos, fmt.Errorf("scan checkpoint %s is corrupt: %w (delete it, or run with --restart)", s.CheckpointName(), err)
	}
	return pos, nil
}

// Run scans every segment and returns once everything read is
// acknowledged by Kafka and the final position saved. It resumes a saved,
// unfinished scan of the same epoch and segment count unless Restart is
// set; a saved scan that finished in this epoch is not run again (a heal
// stopped between its scan and its truncate).
func (s *Scan) Run(ctx context.Context) error {
	epoch := s.opts.Epoch.Load()
	start := scanPosition{Epoch: epoch, Segments: s.opts.Segments, Last: make([]json.RawMessage, s.opts.Segments), Done: make([]bool, s.opts.Segments)}
	pos, err := s.load(ctx)
	switch {
	case errors.Is(err, checkpoint.ErrNotFound), err == nil && s.opts.Restart:
	case err != nil:
		return err
	case pos.Epoch != epoch:
		s.log.Info("the saved scan is of an earlier version epoch; starting over", "table", s.table.Name, "saved", pos.Epoch, "epoch", epoch)
	case pos.Finished:
		s.log.Info("the scan of this version epoch finished already", "table", s.table.Name, "items", pos.Items)
		s.items.Store(pos.Items)
		s.finished.Store(true)
		return nil
	case pos.Segments != s.opts.Segments:
		s.log.Warn("the saved scan used another number of segments; starting over", "saved", pos.Segments, "now", s.opts.Segments)
	default:
		start = pos
		s.resumed.Store(true)
		s.items.Store(pos.Items)
		s.log.Info("resuming the table scan", "table", s.table.Name, "items", pos.Items)
	}
	if out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table.Name)}); err == nil {
		s.total.Store(aws.ToInt64(out.Table.ItemCount))
	}
	s.mu.Lock()
	s.durable = start
	s.mu.Unlock()

	stopSave := make(chan struct{})
	saved := make(chan struct{})
	go func() {
		defer close(saved)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopSave:
				return
			case <-t.C:
				s.save(ctx)
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	for seg := range s.opts.Segments {
		if start.Done[seg] {
			continue
		}
		g.Go(func() error { return s.segment(gctx, ctx, seg, start.Last[seg]) })
	}
	err = g.Wait()
	if err == nil {
		err = s.pub.Flush(ctx)
	}
	close(stopSave)
	<-saved
	if err != nil {
		s.save(context.WithoutCancel(ctx))
		return err
	}
	s.mu.Lock()
	s.durable.Finished = true
	s.dirty = true
	s.mu.Unlock()
	s.save(ctx)
	s.finished.Store(true)
	return nil
}

// segment reads one segment. It waits under gctx but publishes under
// runCtx (the producer fails buffered records whose context ends).
func (s *Scan) segment(gctx, runCtx context.Context, seg int, last json.RawMessage) error {
	in := &dynamodb.ScanInput{
		TableName:              aws.String(s.table.Name),
		Segment:                aws.Int32(int32(seg)),
		TotalSegments:          aws.Int32(int32(s.opts.Segments)),
		ConsistentRead:         aws.Bool(s.opts.ConsistentRead),
		ReturnConsumedCapacity: ddbtypes.ReturnConsumedCapacityTotal,
	}
	if s.opts.PageSize > 0 {
		in.Limit = aws.Int32(s.opts.PageSize)
	}
	if len(last) > 0 {
		key, err := decodeAVMap(last)
		if err != nil {
			return fmt.Errorf("segment %d: saved position: %w", seg, err)
		}
		in.ExclusiveStartKey = key
	}
	for {
		out, err := s.db.Scan(gctx, in)
		if err != nil {
			return fmt.Errorf("scan %s segment %d: %w", s.table.Name, seg, explain(s.opts.Endpoint, err))
		}
		var b pipeline.Batch
		// Rows are sequence 1, a heal's truncate sequence 0: every row of a
		// heal is newer than the truncate that follows it.
		version, _ := pipeline.SequenceVersion(s.opts.Epoch.Load(), "1")
		src := pipeline.SourceInfo{Connector: "dynamodb", Name: s.opts.Name, Table: s.table.Name, Node: fmt.Sprintf("segment-%d", seg), Time: time.Now()}
		for _, raw := range out.Items {
			if err := s.table.add(&b, dynamoattr.FromItem(raw), version, pipeline.OriginSnapshot, src); err != nil {
				return fmt.Errorf("segment %d: %w", seg, err)
			}
		}
		s.items.Add(int64(len(out.Items)))
		next, err := encodeAVMap(out.LastEvaluatedKey)
		if err != nil {
			return err
		}
		done := len(out.LastEvaluatedKey) == 0
		if err := s.pub.Publish(runCtx, b, func() { s.markDurable(seg, next, done, int64(len(out.Items))) }); err != nil {
			return err
		}
		if cc := out.ConsumedCapacity; cc != nil {
			used := aws.ToFloat64(cc.CapacityUnits)
			for {
				old := s.rcu.Load()
				if s.rcu.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+used)) {
					break
				}
			}
			if s.pace != nil && used > 0 {
				if err := s.pace.WaitN(gctx, min(int(math.Ceil(used)), s.pace.Burst())); err != nil {
					return err
				}
			}
		}
		if done {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

func (s *Scan) markDurable(seg int, last json.RawMessage, done bool, items int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.durable.Last[seg] = last
	s.durable.Done[seg] = done
	s.durable.Items += items
	s.dirty = true
}

func (s *Scan) save(ctx context.Context) {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return
	}
	pos := s.durable
	pos.Last = append([]json.RawMessage(nil), pos.Last...)
	pos.Done = append([]bool(nil), pos.Done...)
	pos.Updated = time.Now().UTC()
	s.dirty = false
	s.mu.Unlock()
	raw, err := json.Marshal(pos)
	if err == nil {
		err = s.ck.Save(ctx, s.CheckpointName(), raw)
	}
	if err != nil {
		s.log.Warn("saving the scan checkpoint failed", "err", err)
	}
}

// encodeAVMap saves a LastEvaluatedKey as DynamoDB JSON.
func encodeAVMap(m map[string]ddbtypes.AttributeValue) (json.RawMessage, error) {
	if len(m) == 0 {
		return nil, nil
	}
	var keys []pipeline.KeyAttr
	for k, v := range m {
		keys = append(keys, pipeline.KeyAttr{Name: k, Value: dynamoattr.From(v)})
	}
	return pipeline.EncodeItemKey(keys), nil
}

func decodeAVMap(raw json.RawMessage) (map[string]ddbtypes.AttributeValue, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	keys, err := pipeline.DecodeItemKey(raw)
	if err != nil {
		return nil, err
	}
	return dynamoattr.Key(keys), nil
}
