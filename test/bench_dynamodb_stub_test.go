package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dynamoDBStub is a DynamoDB endpoint that answers DescribeTable with an
// active table keyed by "pk" (S) and every PutItem with success after a
// fixed delay. It counts the writes and the keys written, and fails the
// benchmark on any other call: a sink that calls something new must be
// taught to the stub, not measured against errors.
type dynamoDBStub struct {
	url    string
	table  string
	delay  time.Duration
	expect int64

	writes, inFlight, maxInFlight, conns atomic.Int64

	mu            sync.Mutex
	keys          map[string]struct{}
	unconditional int
	firstAt       time.Time // the first PutItem arrived
	lastDone      time.Time // the expect-th PutItem was answered
	first, done   chan struct{}
	failure       string        // the first call the stub could not answer
	failed        chan struct{} // closed with failure set
}

func newDynamoDBStub(b *testing.B, table string, expect int, delay time.Duration) *dynamoDBStub {
	s := &dynamoDBStub{table: table, delay: delay, expect: int64(expect), keys: make(map[string]struct{}, expect),
		first: make(chan struct{}), done: make(chan struct{}), failed: make(chan struct{})}
	srv := httptest.NewUnstartedServer(s)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	srv.Start()
	b.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *dynamoDBStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away
	}
	switch target {
	case "DynamoDB_20120810.PutItem":
		s.putItem(w, r, body)
	case "DynamoDB_20120810.DescribeTable":
		var req struct{ TableName string }
		if err := json.Unmarshal(body, &req); err != nil || req.TableName != s.table {
			s.fail(fmt.Sprintf("DescribeTable of %q (%v), want table %s", req.TableName, err, s.table))
			stubError(w, "ResourceNotFoundException", "Requested resource not found")
			return
		}
		stubAnswer(w, map[string]any{"Table": map[string]any{
			"TableName": s.table, "TableStatus": "ACTIVE", "TableArn": "arn:aws:dynamodb:us-east-1:000000000000:table/" + s.table,
			"KeySchema":            []map[string]string{{"AttributeName": "pk", "KeyType": "HASH"}},
			"AttributeDefinitions": []map[string]string{{"AttributeName": "pk", "AttributeType": "S"}},
			"BillingModeSummary":   map[string]string{"BillingMode": "PAY_PER_REQUEST"},
			"CreationDateTime":     float64(time.Now().Add(-time.Hour).Unix()),
			"ItemCount":            0, "TableSizeBytes": 0,
		}})
	default:
		s.fail(fmt.Sprintf("unexpected call %q (%.300s): teach the stub this operation", target, body))
		stubError(w, "UnknownOperationException", "the benchmark's stub does not implement "+target)
	}
}

// putItem answers a PutItem after the stub's delay and counts it.
func (s *dynamoDBStub) putItem(w http.ResponseWriter, r *http.Request, body []byte) {
	s.mu.Lock()
	if s.firstAt.IsZero() {
		s.firstAt = time.Now()
		close(s.first)
	}
	s.mu.Unlock()
	now := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for peak := s.maxInFlight.Load(); now > peak && !s.maxInFlight.CompareAndSwap(peak, now); peak = s.maxInFlight.Load() {
	}
	// Picked out of the body rather than decoded: the stub shares the
	// machine's CPUs with cutover, and must cost it as little as it can.
	key, ok := jsonString(body, `"pk":{"S":`)
	if table, _ := jsonString(body, `"TableName":`); !ok || table != s.table {
		s.fail(fmt.Sprintf("a PutItem the stub does not understand (no string key pk, or not table %s): %.300s", s.table, body))
		stubError(w, "ValidationException", "the benchmark's stub expects a string key pk in table "+s.table)
		return
	}
	conditional := bytes.Contains(body, []byte(`"ConditionExpression":"`))
	timer := time.NewTimer(s.delay)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-r.Context().Done():
		return
	}
	s.mu.Lock()
	s.keys[key] = struct{}{}
	if !conditional {
		s.unconditional++
	}
	if s.writes.Add(1) == s.expect {
		s.lastDone = time.Now()
		close(s.done)
	}
	s.mu.Unlock()
	stubAnswer(w, map[string]any{})
}

// fail notes the first call the stub could not answer; runSinkUntil then
// fails the benchmark.
func (s *dynamoDBStub) fail(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failure == "" {
		s.failure = what
		close(s.failed)
	}
}

// jsonString is the string that follows name (a key and its colon, as
// the SDK writes them: no spaces) in a JSON document, if there is one and
// it has no escapes.
func jsonString(doc []byte, name string) (string, bool) {
	i := bytes.Index(doc, []byte(name))
	if i < 0 || len(doc) <= i+len(name) || doc[i+len(name)] != '"' {
		return "", false
	}
	rest := doc[i+len(name)+1:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return "", false
	}
	return string(rest[:end]), true
}

// counts are the writes, the distinct keys written and the writes without
// a condition so far, and the first call the stub could not answer.
func (s *dynamoDBStub) counts() (writes int64, keys, unconditional int, failure string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes.Load(), len(s.keys), s.unconditional, s.failure
}

// stubAnswer writes a DynamoDB JSON 1.0 answer, with the CRC32 header the
// SDK checks.
func stubAnswer(w http.ResponseWriter, v any) {
	body, _ := json.Marshal(v)
	stubWrite(w, http.StatusOK, body)
}

// stubError writes a DynamoDB error of type kind.
func stubError(w http.ResponseWriter, kind, msg string) {
	body, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.dynamodb.v20120810#" + kind, "message": msg})
	stubWrite(w, http.StatusBadRequest, body)
}

func stubWrite(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	h.Set("X-Amzn-Requestid", "bench")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
