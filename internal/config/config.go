package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cutover/cutover/internal/redisconn"
)

// Config is one pipeline, as read from a YAML file (--config) and flags.
// Flags override the file; ${VAR} in the file is replaced by the
// environment variable VAR. See deploy/examples for complete files.
type Config struct {
	// Name identifies the pipeline: checkpoints, consumer group and topic
	// names derive from it.
	Name       string           `yaml:"name"`
	Source     SourceConfig     `yaml:"source"`
	Kafka      KafkaConfig      `yaml:"kafka"`
	Sink       SinkConfig       `yaml:"sink"`
	Checkpoint CheckpointConfig `yaml:"checkpoint"`
	Log        LogConfig        `yaml:"log"`
	// ProgressInterval is how often long-running work logs its progress.
	ProgressInterval time.Duration `yaml:"progress_interval"`
	// MetricsAddr, when set, serves Prometheus metrics (/metrics) and
	// health checks (/healthz, /readyz) on this address.
	MetricsAddr string `yaml:"metrics_addr"`
	// MemoryLimitMB is the soft limit of the process's memory, in MiB,
	// given to the Go runtime (as GOMEMLIMIT would); 0 sets none. The
	// environment variable GOMEMLIMIT, when set, wins.
	MemoryLimitMB int `yaml:"memory_limit_mb"`
}

// SourceConfig selects and configures the source: a Redis database
// (default), or a DynamoDB table when dynamodb.table is set.
type SourceConfig struct {
	Redis    RedisSourceConfig    `yaml:"redis"`
	DynamoDB DynamoDBSourceConfig `yaml:"dynamodb"`
}

// DynamoDBSourceConfig is a DynamoDB table source: a parallel Scan for the
// snapshot, DynamoDB Streams for live changes.
type DynamoDBSourceConfig struct {
	Table    string `yaml:"table"`
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
	// RoleARN is a role to assume for the source (another account).
	RoleARN string `yaml:"role_arn"`
	// Segments is the number of Scan segments read in parallel.
	Segments int `yaml:"segments"`
	// PageSize is the most items per Scan call (0: DynamoDB's 1 MB pages).
	PageSize int32 `yaml:"page_size"`
	// ConsistentRead makes the Scan strongly consistent (twice the reads).
	ConsistentRead bool `yaml:"consistent_read"`
	// ReadCapacityPerSecond paces the Scan by the read capacity it
	// consumes (0: no limit).
	ReadCapacityPerSecond float64 `yaml:"read_capacity_per_second"`
	// Format is how items are read: "items", as they are, or "redis", as
	// the Redis keys cutover's generic mapping stored in them (the table
	// a Redis → DynamoDB pipeline wrote, read back by the reverse
	// pipeline of a roll-back).
	Format string `yaml:"format"`
	// Attributes name the generic mapping's attributes, with format redis:
	// those of the forward pipeline's sink.dynamodb.attributes.
	Attributes DynamoDBAttributes `yaml:"attributes"`
}

// SourceItems reports whether events carry DynamoDB items (a DynamoDB
// source read as items), not Redis keys.
func (c *Config) SourceItems() bool {
	return c.SourceKind() == "dynamodb" && c.Source.DynamoDB.Format != "redis"
}

// RedisSourceConfig is a Redis source.
type RedisSourceConfig struct {
	Addr     string `yaml:"addr"`
	Username string `yaml:"username"`
	// Password; prefer ${REDIS_PASSWORD} in the file or the REDIS_PASSWORD
	// environment variable over a flag.
	Password      string    `yaml:"password"`
	DB            int       `yaml:"db"`
	Include       []string  `yaml:"include"`
	Exclude       []string  `yaml:"exclude"`
	Types         []string  `yaml:"types"`
	ScanCount     int       `yaml:"scan_count"`
	Readers       int       `yaml:"readers"`
	MaxElements   int       `yaml:"max_elements"`
	MaxValueBytes int       `yaml:"max_value_bytes"`
	ChunkElements int       `yaml:"chunk_elements"`
	ChunkBytes    int       `yaml:"chunk_bytes"`
	TLS           TLSConfig `yaml:"tls"`
	// KeysPerSecond paces the snapshot (0: as fast as Redis answers).
	KeysPerSecond int `yaml:"keys_per_second"`
	// HealKeysPerSecond paces the re-scan that heals a gap in live capture.
	HealKeysPerSecond int `yaml:"heal_keys_per_second"`
	// Sentinel, when its addrs are set, names the master instead of addr.
	Sentinel SentinelConfig `yaml:"sentinel"`
}

// KafkaConfig is the transport.
type KafkaConfig struct {
	Brokers         []string `yaml:"brokers"`
	Topic           string   `yaml:"topic"`
	DeadLetterTopic string   `yaml:"dead_letter_topic"`
	Group           string   `yaml:"group"`
	Partitions      int32    `yaml:"partitions"`
	// ReplicationFactor of the topics cutover creates; -1 (the default)
	// takes the cluster's default.replication.factor.
	ReplicationFactor int16 `yaml:"replication_factor"`
	MaxRecordBytes    int   `yaml:"max_record_bytes"`
	// AllowShortTombstones starts a sink whose tombstones expire before
	// the topic's retention: a replay from further back could then bring
	// a deleted key back.
	AllowShortTombstones bool `yaml:"allow_short_tombstones"`
	// SessionTimeout is how long the group waits for a silent sink worker.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	TLS            TLSConfig     `yaml:"tls"`
	SASL           SASLConfig    `yaml:"sasl"`
}

// SASLConfig authenticates to Kafka.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM
	// (the AWS default credential chain); empty for none.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password; prefer ${KAFKA_SASL_PASSWORD} or that environment variable.
	Password string `yaml:"password"`
}

// SinkConfig selects and configures the sink: set exactly one of
// dynamodb.table and redis.addr.
type SinkConfig struct {
	DynamoDB DynamoDBSinkConfig `yaml:"dynamodb"`
	Redis    RedisSinkConfig    `yaml:"redis"`
}

// RedisSinkConfig is a Redis sink (the target Redis).
type RedisSinkConfig struct {
	Addr     string `yaml:"addr"`
	Username string `yaml:"username"`
	// Password; prefer ${TARGET_REDIS_PASSWORD} or that environment variable.
	Password           string        `yaml:"password"`
	DB                 int           `yaml:"db"`
	Concurrency        int           `yaml:"concurrency"`
	TombstoneRetention time.Duration `yaml:"tombstone_retention"`
	TLS                TLSConfig     `yaml:"tls"`
	// KeyTemplate and ItemFormat say how DynamoDB items (a DynamoDB
	// source) become Redis keys and values; see sinks/redis.ItemOptions.
	KeyTemplate string `yaml:"key_template"`
	ItemFormat  string `yaml:"item_format"`
	// Sentinel, when its addrs are set, names the master instead of addr.
	Sentinel SentinelConfig `yaml:"sentinel"`
	// WaitReplicas: writes count as applied once this many replicas have
	// them (WAIT), so a failover of the target loses none; 0: do not wait.
	WaitReplicas int `yaml:"wait_replicas"`
	// VersionBuckets is how many version buckets each hash slot has; 0
	// takes what the target recorded, else 1 (see sinks/redis.Options).
	VersionBuckets int `yaml:"version_buckets"`
}

// SentinelConfig names the master of a replicated Redis through Redis
// Sentinel; cutover follows it to a new master after a failover.
type SentinelConfig struct {
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"`
	Username   string   `yaml:"username"`
	// Password of the sentinels (not of the data nodes); prefer
	// ${REDIS_SENTINEL_PASSWORD}, or TARGET_REDIS_SENTINEL_PASSWORD for
	// the target's.
	Password string `yaml:"password"`
}

// Group is the group c names, nil without addrs.
func (c SentinelConfig) Group(tlsConf *tls.Config) *redisconn.Sentinel {
	if len(c.Addrs) == 0 {
		return nil
	}
	return &redisconn.Sentinel{Addrs: c.Addrs, MasterName: c.MasterName, Username: c.Username, Password: c.Password, TLS: tlsConf}
}

// Conn is how to reach the source Redis, TLS included; with sentinels,
// the caller asks them for the master's address.
func (r RedisSourceConfig) Conn() (redisconn.Conn, error) {
	conn := redisconn.Conn{Addr: r.Addr, Username: r.Username, Password: r.Password, DB: r.DB, PoolSize: r.Readers + 4}
	var err error
	conn.TLS, err = r.TLS.Build("source.redis.tls")
	return conn, err
}

// Conn is how to reach the target Redis, TLS included, like
// RedisSourceConfig.Conn; its errors name the target's flags.
func (r RedisSinkConfig) Conn() (redisconn.Conn, error) {
	conn := redisconn.Conn{Addr: r.Addr, Username: r.Username, Password: r.Password, DB: r.DB, //nolint:gosec // names of flags, not credentials
		PoolSize: r.Concurrency + 4, AddrFlag: "--target-redis-addr", PasswordFlag: "--target-redis-password"}
	var err error
	conn.TLS, err = r.TLS.Build("sink.redis.tls")
	return conn, err
}

// TLSConfig turns on TLS for a connection.
type TLSConfig struct {
	Enabled bool `yaml:"enabled"`
	// CAFile verifies the server; empty uses the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate, for servers that
	// require one.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate: for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Build returns the tls.Config, nil when TLS is off.
func (t TLSConfig) Build(path string) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil //nolint:nilnil // no TLS is not an error
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the user asks for it
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", path, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file %s: no PEM certificate in it", path, t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file/key_file: %w", path, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// SourceKind is "dynamodb" or "redis", whichever is configured.
func (c *Config) SourceKind() string {
	if c.Source.DynamoDB.Table != "" {
		return "dynamodb"
	}
	return "redis"
}

// DescribeSource names the source in reports.
func (c *Config) DescribeSource() string {
	if c.SourceKind() == "dynamodb" {
		return "dynamodb table " + c.Source.DynamoDB.Table
	}
	if s := c.Source.Redis.Sentinel; len(s.Addrs) > 0 {
		return fmt.Sprintf("redis master %q of sentinels %s db %d", s.MasterName, strings.Join(s.Addrs, ","), c.Source.Redis.DB)
	}
	return fmt.Sprintf("redis %s db %d", c.Source.Redis.Addr, c.Source.Redis.DB)
}

// SinkKind is "dynamodb" or "redis", whichever is configured.
func (c *Config) SinkKind() string {
	if c.Sink.Redis.Addr != "" || len(c.Sink.Redis.Sentinel.Addrs) > 0 {
		return "redis"
	}
	return "dynamodb"
}

// HasDynamoDBSink reports whether a DynamoDB target is configured.
func (c *Config) HasDynamoDBSink() bool {
	return c.Sink.DynamoDB.Table != "" || len(c.Sink.DynamoDB.Rules) > 0
}

// DynamoDBSinkConfig is a DynamoDB sink.
type DynamoDBSinkConfig struct {
	Table    string `yaml:"table"`
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
	// RoleARN is a role to assume for the target (another account).
	RoleARN            string        `yaml:"role_arn"`
	KeyAttribute       string        `yaml:"key_attribute"`
	KeyType            string        `yaml:"key_type"`
	CreateTable        bool          `yaml:"create_table"`
	Concurrency        int           `yaml:"concurrency"`
	TombstoneRetention time.Duration `yaml:"tombstone_retention"`
	// MaxWritesPerSecond caps the write rate (0: none); throttling lowers
	// it further while the table needs.
	MaxWritesPerSecond int                `yaml:"max_writes_per_second"`
	Attributes         DynamoDBAttributes `yaml:"attributes"`
	// Rules map Redis keys to natural items of their own tables; keys
	// that match none go to Table (the generic mapping), or are
	// dead-lettered when Table is empty.
	Rules []DynamoDBRule `yaml:"rules"`
}

// DynamoDBRule maps the Redis keys matching a pattern to a table; see
// sinks/dynamodb.Rule.
type DynamoDBRule struct {
	Match          string            `yaml:"match"`
	Table          string            `yaml:"table"`
	Key            string            `yaml:"key"`
	KeyTypes       map[string]string `yaml:"key_types"`
	Fields         map[string]string `yaml:"fields"`
	ValueAttribute string            `yaml:"value_attribute"`
	TTLAttribute   string            `yaml:"ttl_attribute"`
}

// DynamoDBAttributes name the attributes cutover writes besides the key.
type DynamoDBAttributes struct {
	Type    string `yaml:"type"`
	Value   string `yaml:"value"`
	TTL     string `yaml:"ttl"`
	Version string `yaml:"version"`
	Deleted string `yaml:"deleted"`
}

// defaultAttributes are the generic mapping's attribute names.
var defaultAttributes = DynamoDBAttributes{Type: "cutover_type", Value: "value", TTL: "expire_at", Version: "cutover_version", Deleted: "cutover_deleted"}

// CheckpointConfig is where source positions are kept.
type CheckpointConfig struct {
	Dir string `yaml:"dir"`
}

// LogConfig is how cutover logs.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Default holds every default; flags show them in --help.
func Default() Config {
	return Config{
		Name: "cutover",
		Source: SourceConfig{
			Redis: RedisSourceConfig{
				Addr: "127.0.0.1:6379", ScanCount: 1000, Readers: 4, MaxElements: 10_000_000, MaxValueBytes: 512 << 20,
				ChunkElements: 10_000, ChunkBytes: 256 << 10,
				HealKeysPerSecond: 20_000,
			},
			DynamoDB: DynamoDBSourceConfig{Region: "us-east-1", Segments: 4, Format: "items", Attributes: defaultAttributes},
		},
		Kafka: KafkaConfig{
			Brokers: []string{"127.0.0.1:9092"}, Partitions: 12, ReplicationFactor: -1, MaxRecordBytes: 1_000_000,
			SessionTimeout: 10 * time.Second,
		},
		Sink: SinkConfig{
			DynamoDB: DynamoDBSinkConfig{
				Region: "us-east-1", KeyAttribute: "pk", KeyType: "S", Concurrency: 64, TombstoneRetention: 7 * 24 * time.Hour,
				Attributes: defaultAttributes,
			},
			Redis: RedisSinkConfig{Concurrency: 8, TombstoneRetention: 8 * 24 * time.Hour, ItemFormat: "hash"},
		},
		Checkpoint:       CheckpointConfig{Dir: ".cutover/checkpoints"},
		Log:              LogConfig{Level: "info", Format: "text"},
		ProgressInterval: 5 * time.Second,
		MemoryLimitMB:    DefaultMemoryLimitMB,
	}
}

// Finish fills what derives from other settings.
func (c *Config) Finish() {
	if c.Kafka.SASL.Password == "" {
		c.Kafka.SASL.Password = os.Getenv("KAFKA_SASL_PASSWORD")
	}
	if c.Kafka.Topic == "" {
		c.Kafka.Topic = "cutover." + c.Name
	}
	if c.Kafka.DeadLetterTopic == "" {
		c.Kafka.DeadLetterTopic = c.Kafka.Topic + ".dlq"
	}
	if c.Kafka.Group == "" {
		c.Kafka.Group = "cutover-" + c.Name + "-sink"
	}
	if c.Source.Redis.Password == "" {
		c.Source.Redis.Password = os.Getenv("REDIS_PASSWORD")
	}
	if c.Sink.Redis.Password == "" {
		c.Sink.Redis.Password = os.Getenv("TARGET_REDIS_PASSWORD")
	}
	if c.Source.Redis.Sentinel.Password == "" {
		c.Source.Redis.Sentinel.Password = os.Getenv("REDIS_SENTINEL_PASSWORD")
	}
	if c.Sink.Redis.Sentinel.Password == "" {
		c.Sink.Redis.Sentinel.Password = os.Getenv("TARGET_REDIS_SENTINEL_PASSWORD")
	}
}

// Validate reports every problem, each with its path in the file: it
// runs Rules.
func (c *Config) Validate() error {
	var problems []string
	bad := func(path, format string, args ...any) {
		problems = append(problems, path+": "+fmt.Sprintf(format, args...))
	}
	for _, r := range Rules {
		r.check(c, bad)
	}
	if len(problems) == 0 {
		return nil
	}
	return &Error{Problems: problems}
}

// Error lists every problem of a configuration.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Load reads a YAML file onto c, expanding ${VAR} references first.
// Unknown keys are errors, so a typo does not silently fall back to a
// default.
func Load(path string, c *Config) error {
	raw, err := os.ReadFile(path) //nolint:gosec // the user names the file to read
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var missing []string
	expanded := envRef.ReplaceAllStringFunc(string(raw), func(ref string) string {
		name := envRef.FindStringSubmatch(ref)[1]
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return &Error{Problems: []string{fmt.Sprintf("config %s refers to environment variables that are not set: %s (export them, or write the values in the file)",
			path, strings.Join(missing, ", "))}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(expanded), &doc); err != nil {
		return &Error{Problems: []string{fmt.Sprintf("config %s is not valid YAML: %v", path, err)}}
	}
	if problems := unknownKeys(&doc, reflect.TypeOf(c)); len(problems) > 0 {
		return &Error{Problems: problems}
	}
	dec := yaml.NewDecoder(strings.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return &Error{Problems: []string{fmt.Sprintf("config %s: %v", path, err)}}
	}
	return nil
}

// Redacted is c with every secret replaced by "***", for printing.
func Redacted(c Config) Config {
	hide := func(s *string) {
		if *s != "" {
			*s = "***"
		}
	}
	hide(&c.Source.Redis.Password)
	hide(&c.Sink.Redis.Password)
	hide(&c.Kafka.SASL.Password)
	return c
}

// DefaultMemoryLimitMB is the default soft memory limit. cutover's own
// buffers (records waiting for Kafka, fetched records, events in flight)
// come to about 60 MiB at their fullest on the benchmark's backfill; the
// garbage collector's default of letting the heap grow to twice what is
// live would take the process near 200 MiB.
const DefaultMemoryLimitMB = 100
