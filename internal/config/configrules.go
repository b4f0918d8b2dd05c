package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/pipeline"
	ddbsink "github.com/cutover/cutover/sinks/dynamodb"
	redissink "github.com/cutover/cutover/sinks/redis"
)

// A Rule is one check of a configuration. Validate runs every Rule, and
// the YAML reference (cutover dev gen-docs) lists each under its key, so
// the reference says exactly what Validate checks: a Rule added here is
// documented, a Rule removed is no longer promised.
type Rule struct {
	// Key is the YAML Key the reference lists the rule under: a leaf
	// ("kafka.partitions") or a section ("sink") for a rule across keys.
	Key string
	// Doc is the rule in words, as the reference states it; for the
	// simple rules it is also the message.
	Doc   string
	check func(c *Config, bad badFunc)
}

// badFunc reports one problem of a configuration, at its path.
type badFunc func(path, format string, args ...any)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Rules are every rule of a configuration, in the order their
// problems are reported.
var Rules = concat(
	[]Rule{
		{Key: "name", Doc: "letters, digits, '.', '_' or '-', beginning with a letter or digit", check: func(c *Config, bad badFunc) {
			if !nameRE.MatchString(c.Name) {
				bad("name", "%q must be letters, digits, '.', '_' or '-'", c.Name)
			}
		}},
		number("memory_limit_mb", "0 (no limit) or at least 32", func(x float64) bool { return x == 0 || x >= 32 }),
		oneOf("kafka.sasl.mechanism", false, "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM"),
		{Key: "kafka.sasl", Doc: "PLAIN and SCRAM-SHA-* need kafka.sasl.username and a password (kafka.sasl.password or KAFKA_SASL_PASSWORD)", check: func(c *Config, bad badFunc) {
			switch s := c.Kafka.SASL; s.Mechanism {
			case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
				if s.Username == "" || s.Password == "" {
					bad("kafka.sasl", "%s needs a username and a password (kafka.sasl.password or KAFKA_SASL_PASSWORD)", s.Mechanism)
				}
			}
		}},
	},
	when("with a DynamoDB source", func(c *Config) bool { return c.SourceKind() == "dynamodb" },
		required("source.dynamodb.region"),
		number("source.dynamodb.segments", "between 1 and 1000000", func(x float64) bool { return x >= 1 && x <= 1_000_000 }),
		number("source.dynamodb.page_size", "0 (DynamoDB's 1 MB pages) or more", atLeast(0)),
		number("source.dynamodb.read_capacity_per_second", "0 (no limit) or more", atLeast(0)),
		oneOf("source.dynamodb.format", false, "items", "redis"),
		Rule{Key: "source.dynamodb.attributes", Doc: "with format redis, every attribute name required, each a different name", check: func(c *Config, bad badFunc) {
			if c.Source.DynamoDB.Format == "redis" {
				checkAttributes(bad, "source.dynamodb.", c.Source.DynamoDB.Attributes)
				// Redis keys need no template; the values keep their types.
				if c.Sink.Redis.KeyTemplate != "" {
					bad("sink.redis.key_template", "a table read as Redis keys (source.dynamodb.format: redis) writes each key under its own name: drop the template")
				}
			}
		}},
		Rule{Key: "sink.dynamodb.table", Doc: "not the source table (same table, endpoint and region)", check: func(c *Config, bad badFunc) {
			ds, d := c.Source.DynamoDB, c.Sink.DynamoDB
			if d.Table == ds.Table && d.Endpoint == ds.Endpoint && d.Region == ds.Region {
				bad("sink.dynamodb.table", "the target is the source table %s", ds.Table)
			}
		}},
	),
	[]Rule{
		required("source.redis.addr"),
		number("source.redis.db", "0 or more", atLeast(0)),
		sentinelRule("source.redis.sentinel", func(c *Config) SentinelConfig { return c.Source.Redis.Sentinel }),
		number("source.redis.keys_per_second", "0 (no limit) or more", atLeast(0)),
		{Key: "source.redis.types", Doc: "each one of string, hash, list, set, zset, stream", check: func(c *Config, bad badFunc) {
			for _, t := range c.Source.Redis.Types {
				if pt, err := pipeline.ParseType(t); err != nil || pt == pipeline.TypeItem || pt == pipeline.TypeNone {
					bad("source.redis.types", "%q is not a Redis type (string, hash, list, set, zset, stream)", t)
				}
			}
		}},
		positive("source.redis.scan_count"), positive("source.redis.readers"), positive("source.redis.max_elements"),
		positive("source.redis.max_value_bytes"), positive("source.redis.heal_keys_per_second"),
		positive("source.redis.chunk_elements"), positive("source.redis.chunk_bytes"),
		required("kafka.brokers"),
		positive("kafka.partitions"),
		number("kafka.replication_factor", "-1 (the cluster's default) or positive", func(x float64) bool { return x == -1 || x > 0 }),
		number("kafka.session_timeout", "between 6s and 5m (the broker's group.min/max.session.timeout.ms)",
			func(x float64) bool { return x >= float64(6*time.Second) && x <= float64(5*time.Minute) }),
		number("kafka.max_record_bytes", "at least 1024", atLeast(1024)),
		{Key: "source.redis.chunk_bytes", Doc: "at most two thirds of kafka.max_record_bytes: a piece must fit in a record after base64", check: func(c *Config, bad badFunc) {
			if r, k := c.Source.Redis, c.Kafka; r.ChunkBytes*3 > k.MaxRecordBytes*2 {
				bad("source.redis.chunk_bytes", "%d is too close to kafka.max_record_bytes (%d): a piece must fit in a record after base64 (keep it under two thirds)", r.ChunkBytes, k.MaxRecordBytes)
			}
		}},
		{Key: "kafka.dead_letter_topic", Doc: "must differ from kafka.topic", check: func(c *Config, bad badFunc) {
			if c.Kafka.Topic == c.Kafka.DeadLetterTopic {
				bad("kafka.dead_letter_topic", "must differ from kafka.topic")
			}
		}},
		{Key: "sink", Doc: "exactly one target: sink.dynamodb.table or sink.dynamodb.rules (DynamoDB), or sink.redis.addr or sink.redis.sentinel (Redis)", check: func(c *Config, bad badFunc) {
			switch hasRedis := c.SinkKind() == "redis"; {
			case c.HasDynamoDBSink() && hasRedis:
				bad("sink", "both sink.dynamodb and sink.redis are set; a pipeline writes to one target")
			case !c.HasDynamoDBSink() && !hasRedis:
				bad("sink", "required: set sink.dynamodb.table (--dynamodb-table), sink.dynamodb.rules, sink.redis.addr (--target-redis-addr) or sink.redis.sentinel (--target-redis-sentinel-addrs)")
			}
		}},
	},
	when("with a DynamoDB target", func(c *Config) bool { return c.SinkKind() == "dynamodb" && c.HasDynamoDBSink() },
		Rule{Key: "sink.dynamodb.rules[].table", Doc: "required; each rule has a table of its own, other than sink.dynamodb.table", check: func(c *Config, bad badFunc) {
			// Two rules writing one table would map keys of both patterns
			// to one item (user:{id} and member:{id} both reach id=1).
			d := c.Sink.DynamoDB
			tables := map[string]string{}
			if d.Table != "" {
				tables[d.Table] = "sink.dynamodb.table"
			}
			for i, r := range d.Rules {
				path := fmt.Sprintf("sink.dynamodb.rules[%d]", i)
				if r.Table == "" {
					bad(path+".table", "required")
				} else if other, ok := tables[r.Table]; ok {
					bad(path+".table", "%s is also %s's table: keys of both would meet in one item (give each rule its own table)", r.Table, other)
				} else {
					tables[r.Table] = path
				}
			}
		}},
		Rule{Key: "sink.dynamodb.rules[]", Doc: "match required; a key template with text between its placeholders; key_types only of the template's attributes, each S, N or B; fields string, number, binary or json; only with a Redis source", check: func(c *Config, bad badFunc) {
			for i, r := range c.Sink.DynamoDB.Rules {
				path := fmt.Sprintf("sink.dynamodb.rules[%d]", i)
				rule := ddbsink.Rule{Match: r.Match, Key: r.Key, KeyTypes: r.KeyTypes, Fields: r.Fields}
				if err := rule.Validate(); err != nil {
					bad(path, "%v", err)
				}
				if c.SourceItems() {
					bad(path, "rules map Redis keys; with a DynamoDB source set sink.dynamodb.table (or read a table of Redis keys with source.dynamodb.format: redis)")
				}
			}
		}},
		required("sink.dynamodb.region"),
		Rule{Key: "sink.dynamodb.key_type", Doc: "must be S or B (with a Redis source)", check: func(c *Config, bad badFunc) {
			if kt := c.Sink.DynamoDB.KeyType; kt != "S" && kt != "B" && c.SourceKind() == "redis" {
				bad("sink.dynamodb.key_type", "%q must be S or B", kt)
			}
		}},
		positive("sink.dynamodb.concurrency"),
		number("sink.dynamodb.max_writes_per_second", "0 (no cap) or more", atLeast(0)),
		Rule{Key: "sink.dynamodb.attributes", Doc: "key_attribute and every attribute name required, each a different name", check: func(c *Config, bad badFunc) {
			d := c.Sink.DynamoDB
			checkAttributes(bad, "sink.dynamodb.", d.Attributes, struct{ path, name string }{"key_attribute", d.KeyAttribute})
		}},
	),
	when("with a Redis target", func(c *Config) bool { return c.SinkKind() == "redis" && !c.HasDynamoDBSink() },
		number("sink.redis.db", "0 or more", atLeast(0)),
		sentinelRule("sink.redis.sentinel", func(c *Config) SentinelConfig { return c.Sink.Redis.Sentinel }),
		Rule{Key: "sink.redis.addr", Doc: "not with sink.redis.sentinel: the sentinels name the master", check: func(c *Config, bad badFunc) {
			if rs := c.Sink.Redis; rs.Addr != "" && len(rs.Sentinel.Addrs) > 0 {
				bad("sink.redis.addr", "set with sink.redis.sentinel.addrs: the sentinels name the master to write to; drop one of them")
			}
		}},
		number("sink.redis.wait_replicas", "0 (do not wait) or more", atLeast(0)),
		number("sink.redis.version_buckets", "0 (what the target recorded, else 1) to 4096", func(n float64) bool { return n >= 0 && n <= 4096 }),
		positive("sink.redis.concurrency"),
		Rule{Key: "sink.redis", Doc: "not the source database (same addr, or same sentinels and master name, and db) when the source is Redis", check: func(c *Config, bad badFunc) {
			r, rs := c.Source.Redis, c.Sink.Redis
			if c.SourceKind() != "redis" || rs.DB != r.DB {
				return
			}
			srcSentinel, dstSentinel := len(r.Sentinel.Addrs) > 0, len(rs.Sentinel.Addrs) > 0
			switch {
			case !srcSentinel && !dstSentinel && rs.Addr == r.Addr:
				bad("sink.redis", "the target is the source database (%s db %d)", rs.Addr, rs.DB)
			case srcSentinel && dstSentinel && rs.Sentinel.MasterName == r.Sentinel.MasterName &&
				slices.ContainsFunc(rs.Sentinel.Addrs, func(a string) bool { return slices.Contains(r.Sentinel.Addrs, a) }):
				bad("sink.redis", "the target is the source database (master %q of sentinels %s, db %d)", rs.Sentinel.MasterName, strings.Join(rs.Sentinel.Addrs, ","), rs.DB)
			}
		}},
		Rule{Key: "sink.redis.item_format", Doc: "hash, json or dynamodb-json", check: func(c *Config, bad badFunc) {
			if err := (redissink.ItemOptions{Format: c.Sink.Redis.ItemFormat}).Validate(); err != nil {
				bad("sink.redis.item_format", "%v", err)
			}
		}},
		Rule{Key: "sink.redis.key_template", Doc: "empty, or {attribute} placeholders with text between them", check: func(c *Config, bad badFunc) {
			if err := (redissink.ItemOptions{KeyTemplate: c.Sink.Redis.KeyTemplate}).Validate(); err != nil {
				bad("sink.redis.key_template", "%v", err)
			}
		}},
	),
	[]Rule{
		required("checkpoint.dir"),
		oneOf("log.level", true, "debug", "info", "warn", "error"),
		oneOf("log.format", false, "text", "json"),
		tlsFiles("source.redis.tls"), tlsFiles("kafka.tls"), tlsFiles("sink.redis.tls"),
	},
)

func concat(parts ...[]Rule) []Rule {
	var out []Rule
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// when makes rules apply only where pred holds, and says so in their doc.
func when(cond string, pred func(*Config) bool, rules ...Rule) []Rule {
	out := make([]Rule, len(rules))
	for i, r := range rules {
		check := r.check
		out[i] = Rule{Key: r.Key, Doc: cond + ": " + r.Doc, check: func(c *Config, bad badFunc) {
			if pred(c) {
				check(c, bad)
			}
		}}
	}
	return out
}

// required: the key must be set (a non-empty string or list).
// checkAttributes checks the generic mapping's attribute names under
// prefix: each required, each a different name (extra names the others
// must differ from too, e.g. the key attribute).
func checkAttributes(bad badFunc, prefix string, a DynamoDBAttributes, extra ...struct{ path, name string }) {
	seen := map[string]string{}
	for _, a := range append(extra, []struct{ path, name string }{{"attributes.type", a.Type},
		{"attributes.value", a.Value}, {"attributes.ttl", a.TTL}, {"attributes.version", a.Version},
		{"attributes.deleted", a.Deleted}}...) {
		if a.name == "" {
			bad(prefix+a.path, "required")
		} else if other, dup := seen[a.name]; dup {
			bad(prefix+a.path, "%q is also %s%s; each attribute needs its own name", a.name, prefix, other)
		}
		seen[a.name] = a.path
	}
}

// sentinelRule: with sentinel addrs, a master name (the sentinels monitor
// masters by name).
func sentinelRule(key string, get func(*Config) SentinelConfig) Rule {
	return Rule{Key: key, Doc: "addrs and master_name together", check: func(c *Config, bad badFunc) {
		switch s := get(c); {
		case len(s.Addrs) > 0 && s.MasterName == "":
			bad(key+".master_name", "required with %s.addrs: the name the sentinels monitor the master under", key)
		case len(s.Addrs) == 0 && s.MasterName != "":
			bad(key+".addrs", "required with %s.master_name: the sentinels that name the master", key)
		}
	}}
}

func required(key string) Rule {
	return Rule{Key: key, Doc: "required", check: func(c *Config, bad badFunc) {
		if configValue(c, key).IsZero() || configValue(c, key).Kind() == reflect.Slice && configValue(c, key).Len() == 0 {
			bad(key, "required")
		}
	}}
}

// number: the key's value (a duration in nanoseconds) must satisfy ok;
// what says how, after "must be".
func number(key, what string, ok func(float64) bool) Rule {
	return Rule{Key: key, Doc: "must be " + what, check: func(c *Config, bad badFunc) {
		v := configValue(c, key)
		var x float64
		switch v.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			x = float64(v.Int())
		case reflect.Float32, reflect.Float64:
			x = v.Float()
		default:
			panic(fmt.Sprintf("rule on %s: %s is not a number", key, v.Kind()))
		}
		if !ok(x) {
			bad(key, "must be %s", what)
		}
	}}
}

func positive(key string) Rule { return number(key, "positive", func(x float64) bool { return x > 0 }) }

func atLeast(min float64) func(float64) bool { return func(x float64) bool { return x >= min } }

// oneOf: the key's value must be one of values ("" among them: it may be
// empty); fold compares without case.
func oneOf(key string, fold bool, values ...string) Rule {
	var listed []string
	empty := false
	for _, v := range values {
		if v == "" {
			empty = true
		} else {
			listed = append(listed, v)
		}
	}
	words := strings.Join(listed[:len(listed)-1], ", ") + " or " + listed[len(listed)-1]
	doc := words
	if empty {
		doc += ", or empty"
	}
	return Rule{Key: key, Doc: doc, check: func(c *Config, bad badFunc) {
		got := configValue(c, key).String()
		for _, v := range values {
			if got == v || fold && strings.EqualFold(got, v) {
				return
			}
		}
		bad(key, "%q must be %s", got, words)
	}}
}

// tlsFiles: a TLS section's CA, certificate and key files must load.
func tlsFiles(key string) Rule {
	return Rule{Key: key, Doc: "ca_file, cert_file and key_file, when set, are readable PEM files (cert_file and key_file together)",
		check: func(c *Config, bad badFunc) {
			t, _ := configValue(c, key).Interface().(TLSConfig)
			if _, err := t.Build(key); err != nil {
				path, msg, _ := strings.Cut(err.Error(), ": ") // the error names the file's key
				bad(path, "%s", msg)
			}
		}}
}

// configValue is the field of c at a YAML path ("kafka.sasl.mechanism").
// An unknown path is a mistake in Rules, caught by the tests.
func configValue(c *Config, path string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for _, key := range strings.Split(path, ".") {
		f, ok := yamlField(v.Type(), key)
		if !ok {
			panic(fmt.Sprintf("configuration has no key %s (at %s)", path, key))
		}
		v = v.FieldByIndex(f.Index)
	}
	return v
}

// yamlField is the field of struct type t whose YAML key is key.
func yamlField(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.IsExported() && KeyName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
