package test

import (
	"slices"
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

// TestKafkaClientCertificates: the README lists Kafka client certificates
// among what is tested, but only SASL over TLS was. A private broker
// whose TLS listener requires a client certificate signed by its CA
// (ssl.client.auth=required) carries a backfill and a reconcile with the
// right certificate, and refuses, quickly and with a message that says
// what to check, a client without one and a client whose certificate
// another CA signed.
func TestKafkaClientCertificates(t *testing.T) {
	t.Parallel()
	k := stack.NewKafkaMTLS(t)
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	if _, err := datagen.Seed(ctx, src.Client, datagen.Spec{Keys: 300, Seed: 93}); err != nil {
		t.Fatal(err)
	}
	p := newRedisPipeline(t, src, dst)
	p.args = withFlags(p.args, "--kafka-brokers", k.TLSAddr)
	withCert := append(slices.Clone(p.args), "--kafka-tls", "--kafka-tls-ca-file", k.CA, "--kafka-tls-cert-file", k.ClientCert, "--kafka-tls-key-file", k.ClientKey)
	if res := stack.Run(ctx, t, append([]string{"backfill"}, withCert...)...); res.Code != 0 {
		t.Fatalf("backfill with a client certificate exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if rec := stack.Run(ctx, t, append([]string{"reconcile"}, withCert...)...); rec.Code != 0 {
		t.Fatalf("reconcile exited %d\n%s", rec.Code, rec.Stdout)
	}

	for name, flags := range map[string][]string{
		"no client certificate":                 {"--kafka-tls", "--kafka-tls-ca-file", k.CA},
		"a client certificate of an unknown CA": {"--kafka-tls", "--kafka-tls-ca-file", k.CA, "--kafka-tls-cert-file", k.StrangerCert, "--kafka-tls-key-file", k.StrangerKey},
	} {
		start := time.Now()
		res := stack.Run(testCtx(t, time.Minute), t, append(append([]string{"backfill"}, p.args...), flags...)...)
		if res.Code != 1 || !strings.Contains(res.Stderr, "TLS failed") || time.Since(start) > 40*time.Second {
			t.Errorf("%s: exit %d after %v, want 1 at once\n%s", name, res.Code, time.Since(start).Round(time.Second), res.Stderr)
		}
		t.Logf("%s: exit %d after %v: %s", name, res.Code, time.Since(start).Round(time.Millisecond), stack.Tail(res.Stderr, 400))
	}
}
