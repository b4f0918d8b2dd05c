package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	saslaws "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/internal/awsconn"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/kafka"
	"github.com/cutover/cutover/pipeline/reconcile"
	ddbsink "github.com/cutover/cutover/sinks/dynamodb"
	redissink "github.com/cutover/cutover/sinks/redis"
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
	redissrc "github.com/cutover/cutover/sources/redis"
)

// parts says which pieces of a pipeline a command needs.
type parts struct {
	source    bool // the source Redis
	publisher bool // topics and a producer
	// repairs: the producer publishes beside a source that may be running
	// (reconcile --repair), so it keeps the source's partition count.
	repairs bool
	sink    bool // the target store
	worker  bool // a consumer-group worker applying to the sink
	// instanceID makes the worker a static group member (see
	// kafka.WorkerOptions.InstanceID).
	instanceID string
}

// wiring holds the connected pieces of a pipeline.
type wiring struct {
	cfg *config.Config
	log *slog.Logger

	store checkpoint.Store
	// A DynamoDB source: its table, and clients for the table and its
	// stream (set by connect with parts.source).
	dtable   *ddbsrc.Table
	ddb      *dynamodb.Client
	dstreams *dynamodbstreams.Client

	rconn redisconn.Conn
	rcl   *goredis.Client
	rccl  *goredis.ClusterClient // set when the source is a Redis Cluster
	// rsentinel names the source's master (set with source.redis.sentinel).
	rsentinel *redisconn.Sentinel

	partitions int32
	pcl        *kgo.Client
	pub        *kafka.Publisher

	sink   targetSink
	wcl    *kgo.Client
	worker *kafka.Worker
	base   map[int32]int64      // offsets the group had committed when we started
	e2eLag prometheus.Histogram // source read → applied, per event

	closers      []func()
	roundClosers []func() // what one reconcile round opened
}

// targetSink is a sink with what commands report about it.
type targetSink interface {
	pipeline.Sink
	reconcile.Target
	describe() string
	counters() sinkCounters
}

type sinkCounters struct {
	writes, throttles, retries, swept int64
	pace                              float64 // current writes/s limit, 0 for none
}

// connect opens what p asks for, checking each connection so a wrong
// address or credential fails now with a message that says what to fix.
func connect(ctx context.Context, cfg *config.Config, log *slog.Logger, p parts) (*wiring, error) {
	w := &wiring{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			w.close()
		}
	}()
	store, err := checkpoint.NewFileStore(cfg.Checkpoint.Dir)
	if err != nil {
		return nil, err
	}
	w.store = store
	if cfg.SourceKind() == "dynamodb" {
		if err := w.connectDynamoDBSource(ctx, p.source); err != nil {
			return nil, err
		}
	} else if p.source {
		r := cfg.Source.Redis
		if w.rconn, err = r.Conn(); err != nil {
			return nil, err
		}
		srv, err := redisconn.Dial(ctx, w.rconn, r.Sentinel.Group(w.rconn.TLS), false)
		if err != nil {
			return nil, err
		}
		w.closers = append(w.closers, srv.Close)
		w.rconn, w.rcl, w.rccl, w.rsentinel = srv.Conn, srv.Seed, srv.Cluster, srv.Sentinel
		if w.rsentinel != nil {
			log.Info("source master, named by the sentinels", "master", w.rconn.Addr, "master_name", r.Sentinel.MasterName)
		}
	}
	if p.publisher {
		popts := w.publisherOptions()
		kcfg, err := w.kafkaConfig(ctx)
		if err != nil {
			return nil, err
		}
		if w.pcl, err = kafka.Connect(ctx, kcfg, kafka.ProducerOpts(popts)...); err != nil {
			return nil, err
		}
		w.closers = append(w.closers, w.pcl.Close)
		topicPartitions, err := kafka.EnsureTopics(ctx, w.pcl, kafka.TopicSpec{Partitions: cfg.Kafka.Partitions, ReplicationFactor: cfg.Kafka.ReplicationFactor},
			log, cfg.Kafka.Topic, cfg.Kafka.DeadLetterTopic)
		if err != nil {
			return nil, err
		}
		kafka.CheckDurability(ctx, w.pcl, cfg.Kafka.Topic, log)
		if w.partitions, err = kafka.KeyPartitions(ctx, w.pcl, w.store, topicPartitions, kafka.KeyPartitionsOptions{
			Pipeline: cfg.Name, Topic: cfg.Kafka.Topic, Group: cfg.Kafka.Group, KeepSaved: p.repairs, Logger: log}); err != nil {
			return nil, err
		}
		popts.Partitions = w.partitions
		if w.pub, err = kafka.NewPublisher(ctx, w.pcl, popts); err != nil {
			return nil, err
		}
	}
	if p.sink || p.worker {
		var items *ddbsrc.Table
		if cfg.SourceItems() {
			items = w.dtable
		}
		if w.sink, err = newSink(ctx, cfg, items, log, &w.closers); err != nil {
			return nil, err
		}
	}
	if p.worker {
		if err := w.connectWorker(ctx, p.instanceID); err != nil {
			return nil, err
		}
	}
	ok = true
	return w, nil
}

// connectWorker creates the sink worker (it joins the consumer group once
// it runs) and notes the offsets the group has committed.
func (w *wiring) connectWorker(ctx context.Context, instanceID string) error {
	cfg := w.cfg
	if w.e2eLag == nil {
		w.e2eLag = metrics.NewLagHistogram()
	}
	wopts := kafka.WorkerOptions{
		Topic: cfg.Kafka.Topic, Group: cfg.Kafka.Group, DeadLetterTopic: cfg.Kafka.DeadLetterTopic,
		MaxDeadLetterBytes: cfg.Kafka.MaxRecordBytes, InstanceID: instanceID, SessionTimeout: cfg.Kafka.SessionTimeout,
		Logger: w.log, ObserveLag: func(d time.Duration) { w.e2eLag.Observe(d.Seconds()) },
	}
	if cfg.SinkKind() == "redis" {
		// Pipelines of many keys per call: a Redis server answers a
		// pipeline of hundreds of scripts about as fast as one.
		wopts.Concurrency = cfg.Sink.Redis.Concurrency
	} else {
		// One conditional PutItem per call: DynamoDB has no batched
		// conditional write, and a call of one item lets a slow or
		// throttled key hold up nothing but its own later events.
		wopts.Concurrency, wopts.MaxBatch = cfg.Sink.DynamoDB.Concurrency, 1
	}
	kcfg, err := w.kafkaConfig(ctx)
	if err != nil {
		return err
	}
	if w.wcl, err = kafka.Connect(ctx, kcfg, kafka.WorkerOpts(wopts)...); err != nil {
		return err
	}
	w.closers = append(w.closers, w.closeWorker)
	if err := w.checkTombstones(ctx, w.wcl); err != nil {
		return err
	}
	if w.worker, err = kafka.NewWorker(ctx, w.wcl, wopts, w.sink); err != nil {
		return err
	}
	w.base, err = kafka.CommittedOffsets(ctx, w.wcl, cfg.Kafka.Group, cfg.Kafka.Topic)
	return err
}

// closeWorker takes the worker out of the consumer group.
func (w *wiring) closeWorker() {
	if w.wcl != nil {
		w.wcl.Close()
	}
	w.wcl, w.worker = nil, nil
}

// kafkaConfig is how to reach Kafka: brokers, TLS and SASL.
func (w *wiring) kafkaConfig(ctx context.Context) (kafka.Config, error) {
	k := w.cfg.Kafka
	c := kafka.Config{Brokers: k.Brokers, ClientID: "cutover-" + w.cfg.Name}
	var err error
	if c.TLS, err = k.TLS.Build("kafka.tls"); err != nil {
		return c, err
	}
	switch s := k.SASL; s.Mechanism {
	case "PLAIN":
		c.SASL = plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()
	case "SCRAM-SHA-256":
		c.SASL = scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		c.SASL = scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()
	case "AWS_MSK_IAM":
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return c, fmt.Errorf("kafka.sasl AWS_MSK_IAM: load AWS credentials: %w", err)
		}
		c.SASL = saslaws.ManagedStreamingIAM(func(ctx context.Context) (saslaws.Auth, error) {
			creds, err := awsCfg.Credentials.Retrieve(ctx)
			if err != nil {
				return saslaws.Auth{}, fmt.Errorf("AWS credentials for MSK IAM: %w", err)
			}
			return saslaws.Auth{AccessKey: creds.AccessKeyID, SecretKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}, nil
		})
	}
	return c, nil
}

// connectDynamoDBSource reads the source table's description (the sink
// needs its key schema too) and, for the source itself, opens its stream.
func (w *wiring) connectDynamoDBSource(ctx context.Context, source bool) error {
	d := w.cfg.Source.DynamoDB
	db, err := awsconn.DynamoDB(ctx, d.Region, d.Endpoint, d.RoleARN, w.log)
	if err != nil {
		return err
	}
	t, err := ddbsrc.Describe(ctx, db, d.Table, d.Endpoint)
	if err != nil {
		return err
	}
	if d.Format == "redis" {
		if t.Decoder, err = redisDecoder(t, d.Attributes); err != nil {
			return err
		}
	}
	w.dtable, w.ddb = &t, db
	if source {
		if w.dstreams, err = awsconn.Streams(ctx, d.Region, d.Endpoint, d.RoleARN, w.log); err != nil {
			return err
		}
	}
	return nil
}

// redisDecoder reads a table of cutover's generic mapping back as Redis
// keys (source.dynamodb.format: redis): its key is one attribute, S or B,
// as the forward pipeline's sink.dynamodb.key_attribute and key_type made it.
func redisDecoder(t ddbsrc.Table, a config.DynamoDBAttributes) (ddbsrc.Decoder, error) {
	if t.Sort != "" || t.PartitionType != "S" && t.PartitionType != "B" {
		return nil, fmt.Errorf("source table %s has key %s (%s) %s: a table of Redis keys (source.dynamodb.format: redis) has one key attribute of type S or B, as a Redis → DynamoDB pipeline creates it; read this table with format items",
			t.Name, t.Partition, t.PartitionType, t.Sort)
	}
	return ddbsink.GenericMapping(ddbsink.Options{KeyAttribute: t.Partition, KeyType: t.PartitionType,
		TypeAttribute: a.Type, ValueAttribute: a.Value, TTLAttribute: a.TTL, VersionAttribute: a.Version, DeletedAttribute: a.Deleted}), nil
}

func (w *wiring) publisherOptions() kafka.PublisherOptions {
	return kafka.PublisherOptions{Topic: w.cfg.Kafka.Topic, DeadLetterTopic: w.cfg.Kafka.DeadLetterTopic,
		MaxRecordBytes: w.cfg.Kafka.MaxRecordBytes, Partitions: w.partitions, Logger: w.log}
}

// quietly closes c, ignoring the error: for shutdown.
func quietly(c io.Closer) func() {
	return func() { _ = c.Close() }
}

// close closes in reverse order of opening.
func (w *wiring) close() {
	w.closeRound()
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
	w.closers = nil
}

// runWorker starts the sink worker; the returned channel gets its result.
func (w *wiring) runWorker(ctx context.Context) <-chan error {
	return runAsync(ctx, w.worker.Run)
}

// runAsync runs f in a goroutine. The returned channel gets its result
// once, then is closed: more than one step of a command's shutdown reads
// it (waitApplied, then finish), and a second read must get nil at once
// rather than wait forever for a result already taken.
func runAsync(ctx context.Context, f func(context.Context) error) <-chan error {
	errc := make(chan error, 1)
	go func() {
		errc <- f(ctx)
		close(errc)
	}()
	return errc
}

// waitApplied blocks until the worker has committed everything published
// so far, or it fails, or ctx ends.
func (w *wiring) waitApplied(ctx context.Context, workerErr <-chan error) (map[int32]int64, error) {
	end, err := kafka.EndOffsets(ctx, w.pcl, w.cfg.Kafka.Topic)
	if err != nil {
		return nil, err
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	applied := make(chan error, 1)
	go func() { applied <- w.worker.Progress().WaitFor(waitCtx, end, w.base) }()
	select {
	case err := <-applied:
		if err != nil {
			return end, fmt.Errorf("interrupted while the sink was applying: %w (run the same command again to finish)", err)
		}
		return end, nil
	case err := <-workerErr:
		if err == nil {
			err = ctx.Err()
		}
		return end, fmt.Errorf("sink stopped before applying everything: %w (run the same command again: the sink resumes from its committed offsets)", err)
	}
}

func parseTypes(names []string) ([]pipeline.Type, error) {
	var types []pipeline.Type
	for _, n := range names {
		t, err := pipeline.ParseType(n)
		if err != nil {
			return nil, err
		}
		types = append(types, t)
	}
	return types, nil
}

// newSink connects the configured target. items is the source table when
// the source is DynamoDB.
func newSink(ctx context.Context, cfg *config.Config, items *ddbsrc.Table, log *slog.Logger, closers *[]func()) (targetSink, error) {
	if cfg.SinkKind() == "redis" {
		rs := cfg.Sink.Redis
		conn, err := rs.Conn()
		if err != nil {
			return nil, err
		}
		// Writes go to whichever server the sentinels name; one refused by
		// a demoted master (READONLY) is retried by the sink on the new one.
		srv, err := redisconn.Dial(ctx, conn, rs.Sentinel.Group(conn.TLS), true)
		if err != nil {
			return nil, err
		}
		*closers = append(*closers, srv.Close)
		conn = srv.Conn
		if srv.Sentinel != nil {
			log.Info("target master, named by the sentinels", "master", conn.Addr, "master_name", rs.Sentinel.MasterName)
		}
		var cl goredis.UniversalClient = srv.Seed
		if srv.Cluster != nil {
			cl = srv.Cluster
		}
		// The worker runs rs.Concurrency calls at once, each one pipeline
		// on one connection.
		opts := redissink.Options{Addr: rs.Addr, Concurrency: 1, TombstoneRetention: rs.TombstoneRetention, Logger: log,
			// The old store of a roll-back keeps what the forward
			// pipeline never carried: a heal sweeps only this pipeline's keys.
			SweepOwnedOnly: cfg.SourceKind() == "dynamodb" && !cfg.SourceItems(), WaitReplicas: rs.WaitReplicas,
			VersionBuckets: rs.VersionBuckets}
		if items != nil {
			itemOpts := itemOptions(cfg, items)
			// Only now is the table's key known: a template that leaves a
			// key attribute out would map distinct items to one Redis key.
			if err := itemOpts.Validate(); err != nil {
				return nil, &config.Error{Problems: []string{"sink.redis.key_template: " + err.Error() + " (--target-key-template)"}}
			}
			opts.Items = &itemOpts
		}
		s, err := redissink.New(cl, opts)
		if err != nil {
			return nil, err
		}
		if err := s.Prepare(ctx); err != nil {
			return nil, err
		}
		reader := redissrc.NewReader(cl, conn, redissrc.ReaderOptions{Name: cfg.Name, MaxElements: 1 << 30, MaxValueBytes: 1 << 30, Logger: log})
		if err := reader.Prepare(ctx); err != nil {
			return nil, err
		}
		return &redisTarget{Target: redissink.NewTarget(s, keyReader{reader}), conn: conn}, nil
	}
	s, err := newDynamoDBSink(ctx, cfg, items, log)
	if err != nil {
		return nil, err
	}
	return &dynamoTarget{Router: s}, nil
}

type dynamoTarget struct {
	*ddbsink.Router
}

func (d *dynamoTarget) describe() string {
	if len(d.Sinks()) == 1 {
		return "dynamodb table " + d.Tables()
	}
	return "dynamodb tables " + d.Tables()
}
func (d *dynamoTarget) counters() sinkCounters {
	s := d.Stats()
	return sinkCounters{writes: s.Writes, throttles: s.Throttles, retries: s.Retries, swept: s.Swept, pace: s.RateLimit}
}

// redisTarget is the Redis sink, read back through the Redis reader.
type redisTarget struct {
	*redissink.Target
	conn redisconn.Conn
}

func (r *redisTarget) describe() string {
	return fmt.Sprintf("redis %s db %d", r.conn.Addr, r.conn.DB)
}

func (r *redisTarget) counters() sinkCounters {
	s := r.Stats()
	return sinkCounters{writes: s.Writes, retries: s.Retries, swept: s.Swept}
}

// keyReader reads a Redis target's keys with the source's reader, as a
// repair reads them.
type keyReader struct{ *redissrc.Reader }

func (r keyReader) ReadKeys(ctx context.Context, keys []string) (pipeline.Batch, error) {
	b, _, err := r.Read(ctx, keys, pipeline.OriginRepair, nil)
	return b, err
}

// tick calls f every interval until ctx ends.
func tick(ctx context.Context, every time.Duration, f func()) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// topology is the Redis source's servers, for a read of all its keys.
func (w *wiring) topology() *redissrc.Topology {
	return &redissrc.Topology{Conn: w.rconn, Seed: w.rcl, Cluster: w.rccl, Sentinel: w.rsentinel}
}

// itemOptions is how the Redis sink of c writes the items of table
// items, whose key the template must use whole.
func itemOptions(c *config.Config, items *ddbsrc.Table) redissink.ItemOptions {
	o := redissink.ItemOptions{KeyTemplate: c.Sink.Redis.KeyTemplate, Format: c.Sink.Redis.ItemFormat,
		Key: []redissink.KeyAttrSchema{{Name: items.Partition, Type: items.PartitionType}}}
	if items.Sort != "" {
		o.Key = append(o.Key, redissink.KeyAttrSchema{Name: items.Sort, Type: items.SortType})
	}
	return o
}
