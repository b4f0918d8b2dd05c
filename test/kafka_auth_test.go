package test

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// TestKafkaOverTLSAndSASL runs a pipeline through Kafka's TLS + SASL
// listener with each mechanism the stack offers, then shows that a wrong
// password and an untrusted certificate fail fast with errors that say
// what to check, and that the password never reaches the output.
func TestKafkaOverTLSAndSASL(t *testing.T) {
	t.Parallel()
	brokers, ca := stack.KafkaSASL(t)
	src := stack.NewRedis(t)
	if _, err := datagen.Seed(testCtx(t, time.Minute), src.Client, datagen.Spec{Keys: 500, Seed: 91}); err != nil {
		t.Fatal(err)
	}
	for _, mech := range []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			dst := stack.NewRedis(t)
			p := newRedisPipeline(t, src, dst)
			p.args = withFlags(p.args, "--kafka-brokers", strings.Join(brokers, ","))
			p.args = append(p.args, "--kafka-tls", "--kafka-tls-ca-file", ca,
				"--kafka-sasl-mechanism", mech, "--kafka-sasl-username", stack.KafkaSASLUser)
			env := []string{"KAFKA_SASL_PASSWORD=" + stack.KafkaSASLPassword}
			res := stack.RunEnv(testCtx(t, 3*time.Minute), t, env, append([]string{"backfill"}, p.args...)...)
			if res.Code != 0 {
				t.Fatalf("backfill over %s exited %d\n%s\n%s", mech, res.Code, res.Stdout, res.Stderr)
			}
			if rec := stack.RunEnv(testCtx(t, time.Minute), t, env, append([]string{"reconcile"}, p.args...)...); rec.Code != 0 {
				t.Fatalf("reconcile exited %d\n%s", rec.Code, rec.Stdout)
			}
			if strings.Contains(res.Stdout+res.Stderr, stack.KafkaSASLPassword) {
				t.Fatal("the password appears in the output")
			}
		})
	}

	dst := stack.NewRedis(t)
	p := newRedisPipeline(t, src, dst)
	p.args = withFlags(p.args, "--kafka-brokers", strings.Join(brokers, ","))
	base := append([]string{"backfill"}, p.args...)
	// A wrong password: refused at once, with what to check.
	start := time.Now()
	res := stack.RunEnv(testCtx(t, time.Minute), t, []string{"KAFKA_SASL_PASSWORD=wrong-password"},
		append(base, "--kafka-tls", "--kafka-tls-ca-file", ca, "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", stack.KafkaSASLUser)...)
	if res.Code != 1 || !strings.Contains(res.Stderr, "refused cutover's credentials") || time.Since(start) > 30*time.Second {
		t.Fatalf("wrong password: exit %d after %v\n%s", res.Code, time.Since(start), res.Stderr)
	}
	if strings.Contains(res.Stderr, "wrong-password") {
		t.Fatal("the password appears in the error")
	}
	// A certificate the client does not trust (the system roots).
	res = stack.RunEnv(testCtx(t, time.Minute), t, []string{"KAFKA_SASL_PASSWORD=" + stack.KafkaSASLPassword},
		append(base, "--kafka-tls", "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", stack.KafkaSASLUser)...)
	if res.Code != 1 || !strings.Contains(res.Stderr, "TLS failed") {
		t.Fatalf("untrusted certificate: exit %d\n%s", res.Code, res.Stderr)
	}
}
