package stack

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaSASLUser and KafkaSASLPassword are the SCRAM user KafkaSASL
// creates (and the PLAIN user the stack configures).
const (
	KafkaSASLUser     = "cutover"
	KafkaSASLPassword = "cutover-local-secret"
)

// KafkaSASL returns the local stack's TLS + SASL listener and the CA file
// that verifies its certificate, after creating (or updating) the SCRAM
// user KafkaSASLUser for both SCRAM mechanisms over the plain listener.
func KafkaSASL(t testing.TB) (brokers []string, caFile string) {
	t.Helper()
	addr := env("CUTOVER_KAFKA_SASL_BROKERS", "127.0.0.1:"+env("CUTOVER_KAFKA_SASL_PORT", "19094"))
	if c, err := net.DialTimeout("tcp", addr, 3*time.Second); err != nil {
		t.Fatalf("Kafka's SASL_SSL listener is not reachable at %s: %v\n"+
			"a Kafka started by an older local stack lacks it: `deploy/local/stack down kafka && deploy/local/stack up kafka`", addr, err)
	} else {
		c.Close()
	}
	// deploy/local/stack keeps the CA in the cache directory, shared by
	// every checkout (a second clone reuses the first one's broker).
	cache := os.Getenv("CUTOVER_CACHE_DIR")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			t.Fatalf("the local stack's cache directory: %v", err)
		}
		cache = filepath.Join(base, "cutover")
	}
	caFile = env("CUTOVER_KAFKA_CA_FILE", filepath.Join(cache, "kafka-tls", "ca.pem"))
	if _, err := os.Stat(caFile); err != nil {
		t.Fatalf("the local stack's Kafka CA: %v\na Kafka started by an older local stack keeps its CA elsewhere: restart it (deploy/local/stack down kafka && deploy/local/stack up kafka)", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(KafkaBrokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One mechanism per call: a user may appear once per request.
	for _, m := range []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512} {
		res, err := kadm.NewClient(cl).AlterUserSCRAMs(ctx, nil,
			[]kadm.UpsertSCRAM{{User: KafkaSASLUser, Mechanism: m, Iterations: 4096, Password: KafkaSASLPassword}})
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			t.Fatalf("create the SCRAM user %s (%v): %v", KafkaSASLUser, m, err)
		}
	}
	return []string{addr}, caFile
}
