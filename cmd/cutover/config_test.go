package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/config"
)

// Every example configuration under deploy/examples must load and
// validate, with its ${VARS} set.
func TestExampleConfigsAreValid(t *testing.T) {
	files, err := filepath.Glob("../../deploy/examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configurations found: %v", err)
	}
	for _, v := range []string{"REDIS_ADDR", "REDIS_USERNAME", "REDIS_PASSWORD", "KAFKA_BOOTSTRAP", "TARGET_REDIS_ADDR", "TARGET_REDIS_PASSWORD", "KAFKA_SASL_PASSWORD"} {
		t.Setenv(v, "value-of-"+v)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg := config.Default()
			cmd := newBackfillCmdWith(&cfg)
			if err := cmd.ParseFlags([]string{"--config", f}); err != nil {
				t.Fatal(err)
			}
			if err := config.Apply(cmd.Flags(), &cfg); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		})
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFlagsOverrideFileAndFileOverridesDefaults(t *testing.T) {
	t.Setenv("TEST_TABLE", "from-env")
	p := writeConfig(t, `
name: fromfile
source: {redis: {addr: "file:6379", include: ["a:*", "b:*"]}}
kafka: {brokers: ["file:9092"], partitions: 3}
sink: {dynamodb: {table: "${TEST_TABLE}", tombstone_retention: 48h}}
`)
	cfg := config.Default()
	cmd := newBackfillCmdWith(&cfg)
	if err := cmd.ParseFlags([]string{"--config", p, "--redis-addr", "flag:6379", "--include", "c:*", "--partitions", "9"}); err != nil {
		t.Fatal(err)
	}
	if err := config.Apply(cmd.Flags(), &cfg); err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]any{
		"name from file":       {cfg.Name, "fromfile"},
		"addr from flag":       {cfg.Source.Redis.Addr, "flag:6379"},
		"include from flag":    {strings.Join(cfg.Source.Redis.Include, ","), "c:*"},
		"partitions from flag": {cfg.Kafka.Partitions, int32(9)},
		"brokers from file":    {strings.Join(cfg.Kafka.Brokers, ","), "file:9092"},
		"table from env":       {cfg.Sink.DynamoDB.Table, "from-env"},
		"retention from file":  {cfg.Sink.DynamoDB.TombstoneRetention, 48 * time.Hour},
		"default readers":      {cfg.Source.Redis.Readers, 4},
		"derived topic":        {cfg.Kafka.Topic, "cutover.fromfile"},
		"derived dlq":          {cfg.Kafka.DeadLetterTopic, "cutover.fromfile.dlq"},
		"derived group":        {cfg.Kafka.Group, "cutover-fromfile-sink"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s: got %v, want %v", name, c[0], c[1])
		}
	}
}

// TestConfigErrors: each case lists every problem its file has, one
// string per problem; the error must name each, in a problem of its own,
// and report no other (a case passing on its first problem alone would not
// show that the rest are reported).
func TestConfigErrors(t *testing.T) {
	cases := map[string]struct {
		body string
		want []string
	}{
		"unknown key": {"sink: {dynamodb: {tabel: x}}", []string{
			"sink.dynamodb.tabel: unknown key (line 1); the keys allowed in sink.dynamodb are: attributes, concurrency, create_table"}},
		"unknown keys": {"bogus: 1\nsink: {redis: {adr: x}}", []string{
			"bogus: unknown key (line 1); the keys allowed in the top level are: checkpoint, kafka, log",
			"sink.redis.adr: unknown key (line 2)"}},
		"unknown rule key": {"sink: {dynamodb: {rules: [{match: x, tabel: y}]}}", []string{"sink.dynamodb.rules[0].tabel: unknown key"}},
		"not yaml":         {"sink: [", []string{"is not valid YAML"}},
		"unset variable":   {"sink: {dynamodb: {table: ${CUTOVER_SURELY_UNSET_VAR}}}", []string{"CUTOVER_SURELY_UNSET_VAR"}},
		"every problem": {"name: 'bad name'\nsource: {redis: {readers: 0}}\nsink: {dynamodb: {table: t, key_type: N, region: ''}}", []string{
			`name: "bad name" must be`,
			"source.redis.readers: must be positive",
			`sink.dynamodb.key_type: "N" must be S or B`,
			"sink.dynamodb.region: required"}},
		"paths in messages": {"source: {redis: {readers: 0}}", []string{"source.redis.readers: must be positive", "sink: required"}},
		"missing sink":      {"name: x", []string{"sink: required: set sink.dynamodb.table"}},
		"two sinks":         {"sink: {dynamodb: {table: t}, redis: {addr: \"h:1\"}}", []string{"a pipeline writes to one target"}},
		// Every command builds kafka.tls at start, but validate (and so
		// config validate) did not: a missing CA passed validation and
		// failed only when the command connected.
		// Sentinels: the same group on both sides is the source itself;
		// a name without sentinels, or sentinels beside an address, is
		// half a setting.
		"sentinel target is the source": {"source: {redis: {sentinel: {addrs: [\"s:1\", \"s:2\"], master_name: m}}}\nsink: {redis: {sentinel: {addrs: [\"s:2\"], master_name: m}}}",
			[]string{"the target is the source database (master \"m\""}},
		"sentinel master name alone": {"source: {redis: {sentinel: {master_name: m}}}\nsink: {redis: {sentinel: {addrs: [\"s:1\"]}}}",
			[]string{"source.redis.sentinel.addrs: required", "sink.redis.sentinel.master_name: required"}},
		"sentinel and addr": {"sink: {redis: {addr: \"h:1\", sentinel: {addrs: [\"s:1\"], master_name: m}}}", []string{"sink.redis.addr: set with sink.redis.sentinel.addrs"}},
		"kafka tls files":   {"kafka: {tls: {enabled: true, ca_file: /nonexistent/ca.pem}}\nsink: {dynamodb: {table: t}}", []string{"kafka.tls.ca_file: open /nonexistent/ca.pem"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := config.Default()
			cmd := newBackfillCmdWith(&cfg)
			if err := cmd.ParseFlags([]string{"--config", writeConfig(t, c.body)}); err != nil {
				t.Fatal(err)
			}
			err := config.Apply(cmd.Flags(), &cfg)
			// A configuration mistake exits 2, and names no Go type.
			var ce *config.Error
			if !errors.As(err, &ce) || strings.Contains(err.Error(), "main.") {
				t.Fatalf("error %T %v: want a configError (exit 2) that names no internal type", err, err)
			}
			checkProblems(t, ce.Problems, c.want)
		})
	}
}

// checkProblems fails t unless problems are exactly one for each of want,
// each containing its string.
func checkProblems(t *testing.T, problems, want []string) {
	t.Helper()
	if len(problems) != len(want) {
		t.Errorf("%d problems reported, want %d (%q):\n  %s", len(problems), len(want), want, strings.Join(problems, "\n  "))
	}
	used := make([]bool, len(problems))
	for _, w := range want {
		found := false
		for i, p := range problems {
			if !used[i] && strings.Contains(p, w) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("no problem mentions %q:\n  %s", w, strings.Join(problems, "\n  "))
		}
	}
}

// config validate reports every problem with its path and exits 2; on a
// valid file it says so, and --print hides passwords.
func TestConfigValidate(t *testing.T) {
	bad := writeConfig(t, `
name: "bad name!"
source: {redis: {addr: "127.0.0.1:6379", password: hunter2}}
sink: {dynamodb: {table: t, region: ""}}
`)
	if code := run(t.Context(), []string{"config", "validate", "--config", bad}); code != exitUsage {
		t.Fatalf("invalid config: exit %d, want %d", code, exitUsage)
	}
	validate := newConfigCmd()
	validate.SetOut(io.Discard)
	validate.SetErr(io.Discard)
	validate.SetArgs([]string{"validate", "--config", bad})
	var ce *config.Error
	if err := validate.Execute(); !errors.As(err, &ce) {
		t.Fatalf("invalid config: %T %v, want a configError", err, err)
	}
	checkProblems(t, ce.Problems, []string{`name: "bad name!" must be`, "sink.dynamodb.region: required"})
	good := writeConfig(t, `
name: ok
source: {redis: {addr: "127.0.0.1:6379", password: hunter2}}
kafka: {brokers: ["127.0.0.1:9092"]}
sink: {redis: {addr: "127.0.0.1:6380", password: "${TEST_TARGET_SECRET}"}}
`)
	t.Setenv("TEST_TARGET_SECRET", "s3cret-value")
	cmd := newConfigCmd()
	var out strings.Builder
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"validate", "--config", good, "--print"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "configuration ok") || strings.Contains(out.String(), "hunter2") ||
		strings.Contains(out.String(), "s3cret-value") || !strings.Contains(out.String(), "***") {
		t.Fatalf("validate --print:\n%s", out.String())
	}
}

// Every metric the Grafana dashboard queries is one cutover serves.
func TestDashboardUsesServedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana/cutover.json")
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	pipe, err := pipelineMetricDocs()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := reconcileMetricDocs()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range append(pipe, rec...) {
		served[m.Name] = true
	}
	used := regexp.MustCompile(`cutover_[a-z0-9_]+`).FindAllString(string(raw), -1)
	if len(used) < 20 {
		t.Fatalf("the dashboard queries only %d metrics", len(used))
	}
	for _, m := range used {
		m = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
		if !served[m] {
			t.Errorf("the dashboard queries %s, which cutover does not serve", m)
		}
	}
}
