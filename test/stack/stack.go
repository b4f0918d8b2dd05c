// Package stack gives end-to-end tests the real local services: the Kafka
// broker and DynamoDB Local that deploy/local/stack starts (make test does),
// and private redis-server processes that a test starts and stops itself.
//
// A missing service fails the test with a message saying how to start it;
// it never skips, because in CI a skip would hide a broken install step.
// All traffic stays on 127.0.0.1.
package stack

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// KafkaBrokers returns the broker of the local stack, failing t if it
// does not accept connections.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	addr := env("CUTOVER_KAFKA_BROKERS", "127.0.0.1:"+env("CUTOVER_KAFKA_PORT", "19092"))
	mustDial(t, "Kafka", addr)
	return strings.Split(addr, ",")
}

// DynamoDBEndpoint returns the DynamoDB Local endpoint of the local stack,
// failing t if it does not answer.
func DynamoDBEndpoint(t testing.TB) string {
	t.Helper()
	ep := env("CUTOVER_DYNAMODB_ENDPOINT", "http://127.0.0.1:"+env("CUTOVER_DYNAMODB_PORT", "18000"))
	mustDial(t, "DynamoDB Local", strings.TrimPrefix(ep, "http://"))
	return ep
}

// LocalAWSEnv is the environment every cutover process of a test gets:
// credentials DynamoDB Local accepts, no shared AWS config, and no EC2
// metadata lookup, so no test ever leaves loopback looking for credentials.
var LocalAWSEnv = []string{
	"AWS_ACCESS_KEY_ID=local",
	"AWS_SECRET_ACCESS_KEY=local",
	"AWS_SESSION_TOKEN=",
	"AWS_PROFILE=",
	"AWS_REGION=us-east-1",
	"AWS_EC2_METADATA_DISABLED=true",
	"AWS_CONFIG_FILE=/dev/null",
	"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
}

func mustDial(t testing.TB, what, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("%s is not reachable at %s: %v\nstart the local stack with `deploy/local/stack up` (make test does this)", what, addr, err)
	}
	c.Close()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ClosedAddr returns a loopback address nothing listens on.
func ClosedAddr(t testing.TB) string {
	return "127.0.0.1:" + strconv.Itoa(freePort(t))
}

func waitPort(addr string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Unique returns a name no other test run uses: a Kafka topic, a table.
func Unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano()%1_000_000_000)
}
