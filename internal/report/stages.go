package report

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/pipeline/kafka"
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
	redissrc "github.com/cutover/cutover/sources/redis"
)

// Publisher is the Kafka publisher, as the reporter reads it.
type Publisher interface {
	Stats() kafka.PublisherStats
	// Err is why publishing failed for good (nil while it works).
	Err() error
}

// Worker is the sink worker, as the reporter reads it.
type Worker interface {
	Stats() kafka.WorkerStats
	// LastPoll is when the worker last polled Kafka (zero: not yet).
	LastPoll() time.Time
	Progress() *kafka.Progress
}

// Sink is the target store's sink, as the reporter reads it.
type Sink interface {
	// Describe names the target ("dynamodb table users").
	Describe() string
	Counters() SinkCounters
}

// SinkCounters are a sink's own counts, beside the worker's.
type SinkCounters struct {
	Writes, Throttles, Retries, Swept int64
	Pace                              float64 // current writes/s limit, 0 for none
}

// RedisSource is the Redis source, as the reporter reads it.
type RedisSource interface {
	Stats() redissrc.SourceStats
}

// TableSource is the DynamoDB source, as the reporter reads it.
type TableSource interface {
	ScanProgress() (ddbsrc.ScanProgress, bool)
	StreamStats() (ddbsrc.StreamStats, bool)
	Heals() int64
}

// GroupOffsets reads the sink group's position in the pipeline's topic:
// the end offset and the committed offset of every partition.
type GroupOffsets interface {
	Offsets(ctx context.Context) (end, committed map[int32]int64, err error)
}

// CheckpointTimes lists a pipeline's checkpoints and says when each was
// saved (a file store can; a memory store cannot, and is left out).
type CheckpointTimes interface {
	List(ctx context.Context, prefix string) ([]string, error)
	Modified(name string) (time.Time, error)
}

// Stages are the running parts of a pipeline the reporter reads. A part
// that does not run in this process is nil.
type Stages struct {
	Publisher Publisher
	Worker    Worker
	// Base are the offsets the sink group had committed when the worker
	// started: sink lag is measured from there.
	Base        map[int32]int64
	Sink        Sink
	Redis       RedisSource
	Table       TableSource
	Offsets     GroupOffsets    // for the consumer-lag metric
	Checkpoints CheckpointTimes // for the checkpoint-age metric
}

// Reporter logs progress while a pipeline runs, prints its summary, and
// serves its metrics and readiness. Its methods may be called from
// several goroutines.
type Reporter struct {
	cfg   *config.Config
	log   *slog.Logger
	s     Stages
	start time.Time
	end   atomic.Pointer[map[int32]int64] // end offsets to measure sink lag against
	// barActive is set while a progress bar owns the terminal.
	barActive atomic.Bool
}

// New returns the reporter of a run of the pipeline cfg that started at
// start.
func New(cfg *config.Config, log *slog.Logger, s Stages, start time.Time) *Reporter {
	return &Reporter{cfg: cfg, log: log, s: s, start: start}
}

// Start is when the run started.
func (r *Reporter) Start() time.Time { return r.start }

// SetEnd sets the end offsets the sink's lag is measured against, from
// then on (a run that copies up to a known end).
func (r *Reporter) SetEnd(end map[int32]int64) { r.end.Store(&end) }

// redisStats are the Redis source's counters; zero when none runs here.
func (r *Reporter) redisStats() redissrc.SourceStats {
	if r.s.Redis == nil {
		return redissrc.SourceStats{}
	}
	return r.s.Redis.Stats()
}

// snapshotProgress sums every node's snapshot.
func (r *Reporter) snapshotProgress() redissrc.SnapshotProgress { return r.redisStats().Snapshot }

func (r *Reporter) hasSnapshot() bool { return r.redisStats().HasSnapshot }

func (r *Reporter) hasLive() bool { return r.redisStats().HasLive }

// liveStats sums every node's live capture.
func (r *Reporter) liveStats() redissrc.LiveStats { return r.redisStats().Live }

func (r *Reporter) deadLettered() int64 {
	var n int64
	if r.s.Publisher != nil {
		n += r.s.Publisher.Stats().DeadLettered
	}
	if r.s.Worker != nil {
		n += r.s.Worker.Stats().DeadLettered
	}
	return n
}
