package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/kafka"
	redissink "github.com/cutover/cutover/sinks/redis"
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
)

// checkSource connects to the source read-only and lists the source's
// own checks of what replicate needs of it. It reports whether the
// source can be sampled.
func (p *planner) checkSource(ctx context.Context) bool {
	cfg := p.cfg
	w := &wiring{cfg: cfg, log: p.log}
	p.src = w
	if cfg.SourceKind() == "dynamodb" {
		// Describe only: the stream client is not needed to sample.
		if err := w.connectDynamoDBSource(ctx, false); err != nil {
			p.rep.Add(pipeline.Failed("source table", err))
			return false
		}
		checks, readable := ddbsrc.Preflight(ctx, w.ddb, w.dtable)
		p.rep.Add(checks...)
		return readable
	}
	r := cfg.Source.Redis
	conn, err := r.Conn()
	if err != nil {
		p.rep.Add(pipeline.Failed("source redis", err))
		return false
	}
	conn, ok := p.redisMaster(ctx, "source", conn, r.Sentinel)
	if !ok {
		return false
	}
	// The master the sentinels named now is the server read: plan's
	// reads are short, and follow no failover.
	srv, err := redisconn.Dial(ctx, conn, nil, false)
	if err != nil {
		p.rep.Add(pipeline.Failed("source redis", err))
		return false
	}
	w.closers = append(w.closers, srv.Close)
	w.rconn, w.rcl, w.rccl = srv.Conn, srv.Seed, srv.Cluster
	ropts, err := p.readerOptions()
	if err != nil {
		p.rep.Add(pipeline.Failed("source redis", err))
		return false
	}
	checks, readable := w.topology().Preflight(ctx, ropts)
	p.rep.Add(checks...)
	return readable
}

// redisMaster completes conn, with sentinels, with the master they name
// now; who is "source" or "target", for the checks' names. ok is false
// when it failed.
func (p *planner) redisMaster(ctx context.Context, who string, conn redisconn.Conn, sentinels config.SentinelConfig) (redisconn.Conn, bool) {
	if sen := sentinels.Group(conn.TLS); sen != nil {
		addr, err := sen.Master(ctx)
		if err != nil {
			p.rep.Add(pipeline.Failed(who+" sentinels", err))
			return conn, false
		}
		conn.Addr = addr
		p.rep.Add(pipeline.Passed(who+" sentinels", fmt.Sprintf("master %q is %s", sentinels.MasterName, addr)))
	}
	return conn, true
}

// checkKafka checks the brokers and the topics without creating them.
func (p *planner) checkKafka(ctx context.Context) {
	k := p.cfg.Kafka
	kcfg, err := p.src.kafkaConfig(ctx)
	if err != nil {
		p.rep.Add(pipeline.Failed("kafka", err))
		return
	}
	cl, err := kafka.Connect(ctx, kcfg)
	if err != nil {
		p.rep.Add(pipeline.Failed("kafka", err))
		return
	}
	p.closers = append(p.closers, cl.Close)
	p.rep.Add(pipeline.Passed("kafka", strings.Join(k.Brokers, ",")+" reachable"))
	opts := kafka.TopicCheckOptions{Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor, MaxRecordBytes: k.MaxRecordBytes, Broker: k.Brokers[0]}
	for _, topic := range []string{k.Topic, k.DeadLetterTopic} {
		check, exists := kafka.CheckTopic(ctx, cl, topic, opts)
		p.rep.Add(check)
		if topic != k.Topic || !exists || check.Err != nil {
			continue
		}
		// The sink refuses to start on a topic that outlives its
		// tombstones: say so now, with the same fix.
		if err := p.src.checkTombstones(ctx, cl); err != nil {
			p.rep.Add(pipeline.Failed("tombstone retention", err))
		}
	}
}

// checkTarget lists the target's own read-only checks: a DynamoDB
// table's key (or that it would be created), a Redis master.
func (p *planner) checkTarget(ctx context.Context) {
	cfg := p.cfg
	if cfg.SinkKind() == "dynamodb" {
		router, err := newDynamoDBRouter(ctx, cfg, p.itemsTable(), p.log)
		if err != nil {
			p.rep.Add(pipeline.Failed("target", err))
			return
		}
		p.router = router
		p.rep.Target = (&dynamoTarget{Router: router}).describe()
		checks, warm := router.Preflight(ctx)
		p.rep.Add(checks...)
		p.warmWrites = warm
		return
	}
	rs := cfg.Sink.Redis
	p.rep.Target = fmt.Sprintf("redis %s db %d", rs.Addr, rs.DB)
	conn, err := rs.Conn()
	if err != nil {
		p.rep.Add(pipeline.Failed("target redis", err))
		return
	}
	conn, ok := p.redisMaster(ctx, "target", conn, rs.Sentinel)
	if !ok {
		return
	}
	p.rep.Target = fmt.Sprintf("redis %s db %d", conn.Addr, rs.DB)
	cl, err := redisconn.Connect(ctx, conn)
	if err != nil {
		p.rep.Add(pipeline.Failed("target redis", err))
		return
	}
	p.closers = append(p.closers, quietly(cl))
	check := redissink.Preflight(ctx, cl, conn)
	p.rep.Add(check)
	if check.Err != nil {
		return
	}
	p.redisTarget = true
	if items := p.itemsTable(); items != nil {
		// As newSink: only with the table's key known can the template be
		// checked.
		if p.renderer, err = redissink.NewRenderer(itemOptions(cfg, items)); err != nil {
			p.rep.Add(pipeline.Failed("target key template", fmt.Errorf("sink.redis.key_template (--target-key-template): %w", err)))
		}
	}
}
