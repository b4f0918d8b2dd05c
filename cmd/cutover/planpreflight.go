package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline/kafka"
	redissink "github.com/cutover/cutover/sinks/redis"
	redissrc "github.com/cutover/cutover/sources/redis"
)

// checkSource connects to the source read-only and checks what replicate
// needs of it. It reports whether the source can be sampled.
func (p *planner) checkSource(ctx context.Context) bool {
	cfg := p.cfg
	w := &wiring{cfg: cfg, log: p.log}
	p.src = w
	if cfg.SourceKind() == "dynamodb" {
		// Describe only: the stream client is not needed to sample.
		if err := w.connectDynamoDBSource(ctx, false); err != nil {
			p.fail("source table", err)
			return false
		}
		t := w.dtable
		p.ok("source table", "%s: key %s (%s) %s", t.Name, t.Partition, t.PartitionType, t.Sort)
		if _, err := w.ddb.Scan(ctx, &dynamodb.ScanInput{TableName: &t.Name, Limit: aws.Int32(1)}); err != nil {
			p.fail("source read", fmt.Errorf("scan table %s: %w (grant dynamodb:Scan on it)", t.Name, err))
			return false
		}
		if err := t.CheckStream(); err != nil {
			p.fail("source stream", fmt.Errorf("%w (backfill works without it; replicate and the changes during a backfill need it)", err))
		} else {
			p.ok("source stream", "enabled, view type %s", t.StreamView)
		}
		return true
	}
	r := cfg.Source.Redis
	w.rconn = redisconn.Conn{Addr: r.Addr, Username: r.Username, Password: r.Password, DB: r.DB, PoolSize: r.Readers + 4}
	var err error
	if w.rconn.TLS, err = r.TLS.Build("source.redis.tls"); err != nil {
		p.fail("source redis", err)
		return false
	}
	if sen := r.Sentinel.Group(w.rconn.TLS); sen != nil {
		if w.rconn.Addr, err = sen.Master(ctx); err != nil {
			p.fail("source sentinels", err)
			return false
		}
		r.Addr = w.rconn.Addr
		p.ok("source sentinels", "master %q is %s", r.Sentinel.MasterName, r.Addr)
	}
	if w.rcl, err = redisconn.Connect(ctx, w.rconn); err != nil {
		p.fail("source redis", err)
		return false
	}
	w.closers = append(w.closers, quietly(w.rcl))
	cluster, err := redisconn.IsCluster(ctx, w.rcl)
	if err != nil {
		p.fail("source redis", redisconn.Explain(w.rconn, err))
		return false
	}
	if cluster {
		if w.rccl, err = redisconn.ConnectCluster(ctx, w.rconn); err != nil {
			p.fail("source redis", err)
			return false
		}
		w.closers = append(w.closers, quietly(w.rccl))
	}
	topo := w.topology()
	shards, err := topo.Shards(ctx)
	if err != nil {
		p.fail("source redis", err)
		return false
	}
	p.ok("source redis", "%s db %d reachable (%d node(s))", r.Addr, r.DB, len(shards))
	for _, sh := range shards {
		node, err := topo.Open(ctx, sh)
		if err != nil {
			p.fail("source redis "+sh.Addr, err)
			return false
		}
		p.checkNotifications(ctx, node)
		readable := p.checkRead(ctx, node)
		node.Close()
		if !readable {
			return false
		}
	}
	return true
}

// checkRead reads one key of a node as the snapshot does: a user who may
// not run the read's commands fails here, with the ACL to give.
func (p *planner) checkRead(ctx context.Context, node *redissrc.Node) bool {
	name := "source read " + node.Conn.Addr
	ropts, err := p.readerOptions()
	if err != nil {
		p.fail(name, err)
		return false
	}
	empty, err := node.ProbeRead(ctx, ropts)
	switch {
	case err != nil:
		p.fail(name, err)
		return false
	case empty:
		p.ok(name, "the database is empty")
	default:
		p.ok(name, "a key read as the snapshot reads it")
	}
	return true
}

// checkNotifications checks a node's keyspace notifications: replicate
// turns the missing classes on itself when the user may.
func (p *planner) checkNotifications(ctx context.Context, node *redissrc.Node) {
	name := "keyspace notifications " + node.Conn.Addr
	c := redissrc.CheckNotifications(ctx, node.Client, node.Conn)
	switch {
	case c.Err != nil:
		p.fail(name, fmt.Errorf("%w (backfill works without them; replicate needs them)", c.Err))
	case c.Missing == "":
		p.ok(name, "notify-keyspace-events is %q", c.Flags)
	default:
		p.ok(name, "notify-keyspace-events is %q; replicate will add %q with CONFIG SET (the user may)", c.Flags, c.Missing)
	}
}

// checkKafka checks the brokers and the event topic without creating it.
func (p *planner) checkKafka(ctx context.Context) {
	k := p.cfg.Kafka
	kcfg, err := p.src.kafkaConfig(ctx)
	if err != nil {
		p.fail("kafka", err)
		return
	}
	cl, err := kafka.Connect(ctx, kcfg)
	if err != nil {
		p.fail("kafka", err)
		return
	}
	p.closers = append(p.closers, cl.Close)
	p.ok("kafka", "%s reachable", strings.Join(k.Brokers, ","))
	for _, topic := range []string{k.Topic, k.DeadLetterTopic} {
		info, exists, err := kafka.InspectTopic(ctx, cl, topic)
		check := "topic " + topic
		switch {
		case err != nil:
			p.fail(check, err)
		case !exists:
			rf := fmt.Sprint(k.ReplicationFactor)
			if k.ReplicationFactor == -1 {
				rf = "the cluster's default"
			}
			p.ok(check, "does not exist: replicate and backfill create it with %d partitions, replication factor %s (the user needs CREATE on the cluster)", k.Partitions, rf)
		case info.MaxMessageBytes > 0 && info.MaxMessageBytes < int64(k.MaxRecordBytes):
			p.fail(check, fmt.Errorf("max.message.bytes is %d, below kafka.max_record_bytes %d: events between the two would be refused. "+
				"Raise it: kafka-configs.sh --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config max.message.bytes=%d; "+
				"or lower --max-record-bytes (kafka.max_record_bytes) to at most %d",
				info.MaxMessageBytes, k.MaxRecordBytes, k.Brokers[0], topic, k.MaxRecordBytes, info.MaxMessageBytes))
		default:
			p.ok(check, "exists: %d partitions, replication factor %d, max.message.bytes %d, retention %s",
				info.Partitions, info.ReplicationFactor, info.MaxMessageBytes, retentionText(info.Retention))
			if topic != k.Topic {
				continue
			}
			// The sink refuses to start on a topic that outlives its
			// tombstones: say so now, with the same fix.
			if err := p.src.checkTombstones(ctx, cl); err != nil {
				p.fail("tombstone retention", err)
			}
		}
	}
}

func retentionText(d interface{ String() string }) string {
	s := d.String()
	if strings.HasPrefix(s, "-") {
		return "forever"
	}
	return s
}

// checkTarget checks the target read-only: a DynamoDB table's key (or
// that it would be created), a Redis master.
func (p *planner) checkTarget(ctx context.Context) {
	cfg := p.cfg
	if cfg.SinkKind() == "dynamodb" {
		router, err := newDynamoDBRouter(ctx, cfg, p.itemsTable(), p.log)
		if err != nil {
			p.fail("target", err)
			return
		}
		p.router = router
		p.rep.Target = (&dynamoTarget{Router: router}).describe()
		for _, c := range router.Check(ctx) {
			check := "target table " + c.Table
			if c.WarmWrites > 0 && (p.warmWrites == 0 || c.WarmWrites < p.warmWrites) {
				p.warmWrites = c.WarmWrites
			}
			switch {
			case c.Err != nil:
				p.fail(check, c.Err)
			case c.Create:
				p.ok(check, "does not exist: created on the first run (create_table), on-demand, with %s", c.Key)
			default:
				p.ok(check, "exists with %s", c.Key)
			}
		}
		return
	}
	rs := cfg.Sink.Redis
	conn := redisconn.Conn{Addr: rs.Addr, Username: rs.Username, Password: rs.Password, DB: rs.DB, //nolint:gosec // names of flags, not credentials
		AddrFlag: "--target-redis-addr", PasswordFlag: "--target-redis-password"}
	p.rep.Target = fmt.Sprintf("redis %s db %d", rs.Addr, rs.DB)
	var err error
	if conn.TLS, err = rs.TLS.Build("sink.redis.tls"); err != nil {
		p.fail("target redis", err)
		return
	}
	if sen := rs.Sentinel.Group(conn.TLS); sen != nil {
		if conn.Addr, err = sen.Master(ctx); err != nil {
			p.fail("target sentinels", err)
			return
		}
		rs.Addr = conn.Addr
		p.rep.Target = fmt.Sprintf("redis %s db %d", rs.Addr, rs.DB)
		p.ok("target sentinels", "master %q is %s", rs.Sentinel.MasterName, rs.Addr)
	}
	cl, err := redisconn.Connect(ctx, conn)
	if err != nil {
		p.fail("target redis", err)
		return
	}
	p.closers = append(p.closers, quietly(cl))
	info, err := cl.Info(ctx, "replication").Result()
	if err != nil {
		p.fail("target redis", redisconn.Explain(conn, err))
		return
	}
	if strings.Contains(info, "role:slave") {
		p.fail("target redis", fmt.Errorf("redis %s is a replica: writes go to its master (point --target-redis-addr, sink.redis.addr, at the master)", rs.Addr))
		return
	}
	p.redisTarget = true
	p.ok("target redis", "%s db %d reachable, a master", rs.Addr, rs.DB)
	if items := p.itemsTable(); items != nil {
		// As newSink: only with the table's key known can the template be
		// checked.
		if p.renderer, err = redissink.NewRenderer(itemOptions(cfg, items)); err != nil {
			p.fail("target key template", fmt.Errorf("sink.redis.key_template (--target-key-template): %w", err))
		}
	}
}
