package config

import (
	"fmt"

	"github.com/spf13/pflag"
)

// Each flag writes straight into the Config field its YAML key fills; its
// help names that key. Apply re-applies the flags given on the
// command line after the file is read, so flags win.

// BindFlags binds every setting of a pipeline: each command that works
// on a pipeline takes the same configuration, so one file or one set of
// flags drives backfill, reconcile and the rest.
func BindFlags(fs *pflag.FlagSet, c *Config) {
	bindCommon(fs, c)
	bindRedisSource(fs, c)
	bindDynamoDBSource(fs, c)
	bindKafka(fs, c)
	bindDynamoDBSink(fs, c)
	bindRedisSink(fs, c)
	bindCheckpoint(fs, c)
	fs.DurationVar(&c.ProgressInterval, "progress-interval", c.ProgressInterval, "how often long-running work logs its progress (progress_interval)")
	fs.IntVar(&c.MemoryLimitMB, "memory-limit-mb", c.MemoryLimitMB, "soft limit of cutover's memory in MiB, for the Go runtime's garbage collector; 0 for none; the GOMEMLIMIT environment variable wins (memory_limit_mb)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "serve Prometheus metrics on /metrics and health checks on /healthz and /readyz at this address, e.g. :9464 (metrics_addr)")
}

func bindCommon(fs *pflag.FlagSet, c *Config) {
	fs.String("config", "", "YAML file describing the pipeline (see deploy/examples); flags override it")
	fs.StringVar(&c.Name, "name", c.Name, "pipeline name; checkpoints, consumer group and topic names derive from it (name)")
	fs.StringVar(&c.Log.Level, "log-level", c.Log.Level, "debug, info, warn or error (log.level)")
	fs.StringVar(&c.Log.Format, "log-format", c.Log.Format, "text or json (log.format)")
}

func bindRedisSource(fs *pflag.FlagSet, c *Config) {
	r := &c.Source.Redis
	fs.StringVar(&r.Addr, "redis-addr", r.Addr, "source Redis host:port (source.redis.addr)")
	fs.StringVar(&r.Username, "redis-username", r.Username, "source Redis ACL user (source.redis.username)")
	fs.StringVar(&r.Password, "redis-password", r.Password, "source Redis password; prefer the REDIS_PASSWORD environment variable (source.redis.password)")
	fs.IntVar(&r.DB, "redis-db", r.DB, "source Redis logical database (source.redis.db)")
	fs.StringSliceVar(&r.Include, "include", r.Include, "copy only keys matching one of these Redis glob patterns; repeatable (source.redis.include)")
	fs.StringSliceVar(&r.Exclude, "exclude", r.Exclude, "skip keys matching one of these Redis glob patterns; repeatable (source.redis.exclude)")
	fs.StringSliceVar(&r.Types, "type", r.Types, "copy only keys of these types: string, hash, list, set, zset, stream; repeatable (source.redis.types)")
	fs.IntVar(&r.ScanCount, "scan-count", r.ScanCount, "COUNT hint of each SCAN: keys per page (source.redis.scan_count)")
	fs.IntVar(&r.Readers, "readers", r.Readers, "pages read from Redis concurrently, one pipelined round trip each (source.redis.readers)")
	fs.IntVar(&r.MaxElements, "max-elements", r.MaxElements, "largest hash/list/set/zset/stream copied; larger keys go to the dead-letter topic (source.redis.max_elements)")
	fs.IntVar(&r.MaxValueBytes, "max-value-bytes", r.MaxValueBytes, "largest string copied, in bytes (default: Redis' own limit); a string too long for one Kafka record travels in pieces; larger keys go to the dead-letter topic (source.redis.max_value_bytes)")
	fs.IntVar(&r.ChunkElements, "chunk-elements", r.ChunkElements, "collections with more elements are read and sent in pieces of at most this many (source.redis.chunk_elements)")
	fs.IntVar(&r.ChunkBytes, "chunk-bytes", r.ChunkBytes, "collections larger than this in memory are read in pieces of about this many encoded bytes (source.redis.chunk_bytes)")
	bindTLS(fs, &r.TLS, "redis-tls", "source.redis.tls")
	bindSentinel(fs, &r.Sentinel, "redis", "source.redis.sentinel", "REDIS_SENTINEL_PASSWORD")
	fs.IntVar(&r.KeysPerSecond, "keys-per-second", r.KeysPerSecond, "pace the snapshot to protect production; 0 means as fast as Redis answers (source.redis.keys_per_second)")
	fs.IntVar(&r.HealKeysPerSecond, "heal-keys-per-second", r.HealKeysPerSecond, "pace of the re-scan that heals a gap in live capture (source.redis.heal_keys_per_second)")
}

func bindDynamoDBSource(fs *pflag.FlagSet, c *Config) {
	d := &c.Source.DynamoDB
	fs.StringVar(&d.Table, "source-table", d.Table, "source DynamoDB table; set it to copy a table instead of Redis (source.dynamodb.table)")
	fs.StringVar(&d.Region, "source-region", d.Region, "AWS region of the source table (source.dynamodb.region)")
	fs.StringVar(&d.Endpoint, "source-endpoint", d.Endpoint, "DynamoDB endpoint URL of the source table, e.g. http://127.0.0.1:8000 for DynamoDB Local (source.dynamodb.endpoint)")
	fs.StringVar(&d.RoleARN, "source-role-arn", d.RoleARN, "IAM role to assume for the source table, e.g. in another account (source.dynamodb.role_arn)")
	fs.IntVar(&d.Segments, "scan-segments", d.Segments, "segments of the table scanned in parallel (source.dynamodb.segments)")
	fs.Int32Var(&d.PageSize, "scan-page-size", d.PageSize, "most items per Scan call; 0 lets DynamoDB fill 1 MB pages (source.dynamodb.page_size)")
	fs.BoolVar(&d.ConsistentRead, "consistent-read", d.ConsistentRead, "scan with strongly consistent reads, at twice the read capacity (source.dynamodb.consistent_read)")
	fs.Float64Var(&d.ReadCapacityPerSecond, "read-capacity-per-second", d.ReadCapacityPerSecond, "pace the scan by the read capacity it consumes, to spare production; 0 means no limit (source.dynamodb.read_capacity_per_second)")
	fs.StringVar(&d.Format, "source-format", d.Format, "how the source table's items are read: items (as they are) or redis (the Redis keys a Redis → DynamoDB pipeline stored, for the reverse pipeline of a roll-back) (source.dynamodb.format)")
}

func bindKafka(fs *pflag.FlagSet, c *Config) {
	k := &c.Kafka
	fs.StringSliceVar(&k.Brokers, "kafka-brokers", k.Brokers, "Kafka seed brokers host:port, comma-separated (kafka.brokers)")
	bindTLS(fs, &k.TLS, "kafka-tls", "kafka.tls")
	fs.StringVar(&k.SASL.Mechanism, "kafka-sasl-mechanism", k.SASL.Mechanism, "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM (kafka.sasl.mechanism)")
	fs.StringVar(&k.SASL.Username, "kafka-sasl-username", k.SASL.Username, "SASL user (kafka.sasl.username); the password comes from kafka.sasl.password or KAFKA_SASL_PASSWORD")
	fs.StringVar(&k.Topic, "topic", k.Topic, "topic of the change events (kafka.topic; default cutover.<name>)")
	fs.StringVar(&k.DeadLetterTopic, "dead-letter-topic", k.DeadLetterTopic, "topic of records that could not be copied (kafka.dead_letter_topic; default <topic>.dlq)")
	fs.StringVar(&k.Group, "group", k.Group, "consumer group of the sink workers (kafka.group; default cutover-<name>-sink)")
	fs.Int32Var(&k.Partitions, "partitions", k.Partitions, "partitions of the topic when cutover creates it (kafka.partitions)")
	fs.Int16Var(&k.ReplicationFactor, "replication-factor", k.ReplicationFactor, "replication factor of topics cutover creates; -1 takes the cluster's default.replication.factor (kafka.replication_factor)")
	fs.BoolVar(&k.AllowShortTombstones, "allow-short-tombstones", k.AllowShortTombstones,
		"start a sink whose tombstones expire before the topic's retention.ms, accepting that a replay from further back can bring a deleted key back (kafka.allow_short_tombstones)")
	fs.IntVar(&k.MaxRecordBytes, "max-record-bytes", k.MaxRecordBytes, "largest event published; keep it under the topic's max.message.bytes (kafka.max_record_bytes)")
	fs.DurationVar(&k.SessionTimeout, "session-timeout", k.SessionTimeout, "how long the group waits for a silent sink worker before moving its partitions (kafka.session_timeout)")
}

func bindDynamoDBSink(fs *pflag.FlagSet, c *Config) {
	d := &c.Sink.DynamoDB
	fs.StringVar(&d.Table, "dynamodb-table", d.Table, "target DynamoDB table (sink.dynamodb.table)")
	fs.StringVar(&d.Region, "aws-region", d.Region, "AWS region of the table (sink.dynamodb.region)")
	fs.StringVar(&d.Endpoint, "dynamodb-endpoint", d.Endpoint, "DynamoDB endpoint URL, e.g. http://127.0.0.1:8000 for DynamoDB Local (sink.dynamodb.endpoint)")
	fs.StringVar(&d.RoleARN, "dynamodb-role-arn", d.RoleARN, "IAM role to assume for the target table, e.g. in another account (sink.dynamodb.role_arn)")
	fs.StringVar(&d.KeyAttribute, "key-attribute", d.KeyAttribute, "partition key attribute that holds the Redis key; with a DynamoDB source the source's key schema is used instead (sink.dynamodb.key_attribute)")
	fs.StringVar(&d.KeyType, "key-type", d.KeyType, "S (keys must be UTF-8 text) or B (any bytes) (sink.dynamodb.key_type)")
	fs.BoolVar(&d.CreateTable, "create-table", d.CreateTable, "create the table if it is missing, on-demand, with TTL on expire_at (sink.dynamodb.create_table)")
	fs.IntVar(&d.Concurrency, "sink-concurrency", d.Concurrency, "most DynamoDB writes in flight per worker; the worker adapts the number below it to the table (sink.dynamodb.concurrency)")
	fs.DurationVar(&d.TombstoneRetention, "tombstone-retention", d.TombstoneRetention, "how long a deleted key's tombstone is kept; at least the topic's retention (sink.dynamodb.tombstone_retention)")
	fs.IntVar(&d.MaxWritesPerSecond, "max-writes-per-second", d.MaxWritesPerSecond, "cap on DynamoDB writes per second, 0 for none; throttling lowers the pace further while needed (sink.dynamodb.max_writes_per_second)")
	a := &d.Attributes
	fs.StringVar(&a.Version, "version-attribute", a.Version, "attribute holding each item's version; writes are conditional on it (sink.dynamodb.attributes.version)")
	fs.StringVar(&a.TTL, "ttl-attribute", a.TTL, "attribute holding the expiry in epoch seconds; enable the table's TTL on it (sink.dynamodb.attributes.ttl)")
	fs.StringVar(&a.Type, "type-attribute", a.Type, "attribute holding the Redis type (sink.dynamodb.attributes.type)")
	fs.StringVar(&a.Value, "value-attribute", a.Value, "attribute holding the value (sink.dynamodb.attributes.value)")
	fs.StringVar(&a.Deleted, "deleted-attribute", a.Deleted, "attribute that marks a tombstone (sink.dynamodb.attributes.deleted)")
}

func bindRedisSink(fs *pflag.FlagSet, c *Config) {
	r := &c.Sink.Redis
	fs.StringVar(&r.Addr, "target-redis-addr", r.Addr, "target Redis host:port, when the target is Redis (sink.redis.addr)")
	fs.StringVar(&r.Username, "target-redis-username", r.Username, "target Redis ACL user (sink.redis.username)")
	fs.StringVar(&r.Password, "target-redis-password", r.Password, "target Redis password; prefer the TARGET_REDIS_PASSWORD environment variable (sink.redis.password)")
	fs.IntVar(&r.DB, "target-redis-db", r.DB, "target Redis logical database (sink.redis.db)")
	fs.IntVar(&r.Concurrency, "target-redis-concurrency", r.Concurrency, "most pipelines of writes in flight to the target Redis per worker, adapted below it to the server (sink.redis.concurrency)")
	bindTLS(fs, &r.TLS, "target-redis-tls", "sink.redis.tls")
	bindSentinel(fs, &r.Sentinel, "target-redis", "sink.redis.sentinel", "TARGET_REDIS_SENTINEL_PASSWORD")
	fs.IntVar(&r.VersionBuckets, "target-redis-version-buckets", r.VersionBuckets, "how many hashes per hash slot hold the target's versions, for keyspaces of hundreds of millions of keys (one bucket's cleaning reads it whole); fixed for a target once written, 0 takes what it recorded, else 1 (sink.redis.version_buckets)")
	fs.IntVar(&r.WaitReplicas, "target-redis-wait-replicas", r.WaitReplicas, "count a write as applied only once this many replicas of the target have it (WAIT), so that a failover of the target loses none; 0 does not wait (sink.redis.wait_replicas)")
	fs.StringVar(&r.KeyTemplate, "target-key-template", r.KeyTemplate, "Redis key of each DynamoDB item, from its key attributes, e.g. 'user:{userId}'; default the key values joined by ':' (sink.redis.key_template)")
	fs.StringVar(&r.ItemFormat, "target-item-format", r.ItemFormat, "how a DynamoDB item is written to Redis: hash, json or dynamodb-json (sink.redis.item_format)")
	fs.DurationVar(&r.TombstoneRetention, "target-redis-tombstone-retention", r.TombstoneRetention, "how long tombstones (and versions of keys with an expiry, past it) are kept in the target Redis; longer than the topic's retention (sink.redis.tombstone_retention)")
}

func bindSentinel(fs *pflag.FlagSet, c *SentinelConfig, flag, path, env string) {
	fs.StringSliceVar(&c.Addrs, flag+"-sentinel-addrs", c.Addrs, "Redis Sentinel host:port list; the master they name replaces --"+flag+"-addr, and is followed after a failover ("+path+".addrs)")
	fs.StringVar(&c.MasterName, flag+"-master-name", c.MasterName, "name the sentinels monitor the master under ("+path+".master_name)")
	fs.StringVar(&c.Username, flag+"-sentinel-username", c.Username, "ACL user of the sentinels ("+path+".username)")
	fs.StringVar(&c.Password, flag+"-sentinel-password", c.Password, "password of the sentinels; prefer the "+env+" environment variable ("+path+".password)")
}

func bindTLS(fs *pflag.FlagSet, t *TLSConfig, flag, path string) {
	fs.BoolVar(&t.Enabled, flag, t.Enabled, "connect with TLS ("+path+".enabled)")
	fs.StringVar(&t.CAFile, flag+"-ca-file", t.CAFile, "CA certificates (PEM) that sign the server's certificate; default the system's ("+path+".ca_file)")
	fs.StringVar(&t.CertFile, flag+"-cert-file", t.CertFile, "client certificate (PEM), for servers that require one ("+path+".cert_file)")
	fs.StringVar(&t.KeyFile, flag+"-key-file", t.KeyFile, "client certificate's key (PEM) ("+path+".key_file)")
	fs.StringVar(&t.ServerName, flag+"-server-name", t.ServerName, "name to verify in the server's certificate, when it is not the address's ("+path+".server_name)")
	fs.BoolVar(&t.InsecureSkipVerify, flag+"-insecure-skip-verify", t.InsecureSkipVerify, "accept any server certificate: for tests only ("+path+".insecure_skip_verify)")
}

func bindCheckpoint(fs *pflag.FlagSet, c *Config) {
	fs.StringVar(&c.Checkpoint.Dir, "checkpoint-dir", c.Checkpoint.Dir, "directory of the source's checkpoints (checkpoint.dir)")
}

// Apply builds the final Config of a command whose flags are fs:
// defaults, then the --config file, then the flags the user gave. It
// validates the result.
func Apply(fs *pflag.FlagSet, c *Config) error {
	type given struct {
		f    *pflag.Flag
		vals []string
	}
	var flags []given
	fs.Visit(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			flags = append(flags, given{f, sv.GetSlice()})
		} else {
			flags = append(flags, given{f, []string{f.Value.String()}})
		}
	})
	if path, _ := fs.GetString("config"); path != "" {
		if err := Load(path, c); err != nil {
			return err
		}
		for _, g := range flags {
			var err error
			if sv, ok := g.f.Value.(pflag.SliceValue); ok {
				err = sv.Replace(g.vals)
			} else {
				err = g.f.Value.Set(g.vals[0])
			}
			if err != nil {
				return fmt.Errorf("flag --%s: %w", g.f.Name, err)
			}
		}
	}
	c.Finish()
	return c.Validate()
}
