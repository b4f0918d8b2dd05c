package dynamodb

// How the sink answers DynamoDB's refusals — throttled writes, keys left
// unprocessed — over a table in memory behind dynamoAPI, on a fake clock
// (testing/synctest): the backoffs cost no real time and can be measured.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/pipeline"
)

// fakeDB is one table in memory: PutItem with the sink's condition (the
// stored version must be absent or older), BatchGetItem. Other calls
// panic (the embedded interface is nil).
type fakeDB struct {
	dynamoAPI
	mu    sync.Mutex
	items map[string]map[string]types.AttributeValue // by partition key
	// refusePut, when set, is the answer to the n-th PutItem (1-based)
	// instead of making it; nil makes it.
	refusePut func(n int) error
	puts      []time.Time // when each PutItem came
	// unprocessed, when set, is how many of the keys of the n-th
	// BatchGetItem are left unprocessed (the last ones).
	unprocessed func(n, keys int) int
	gets        []time.Time
}

func newFakeDB() *fakeDB { return &fakeDB{items: map[string]map[string]types.AttributeValue{}} }

// pk is the item's partition key attribute "pk", as a map key.
func pk(item map[string]types.AttributeValue) string {
	switch v := item["pk"].(type) {
	case *types.AttributeValueMemberB:
		return "B:" + string(v.Value)
	case *types.AttributeValueMemberS:
		return "S:" + v.Value
	}
	return fmt.Sprintf("%T", item["pk"])
}

func (f *fakeDB) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts = append(f.puts, time.Now())
	if f.refusePut != nil {
		if err := f.refusePut(len(f.puts)); err != nil {
			return nil, err
		}
	}
	k := pk(in.Item)
	attr := in.ExpressionAttributeNames["#v"]
	if old, ok := f.items[k][attr].(*types.AttributeValueMemberB); ok {
		if bytes.Compare(old.Value, in.ExpressionAttributeValues[":v"].(*types.AttributeValueMemberB).Value) >= 0 {
			return nil, &types.ConditionalCheckFailedException{Message: aws.String("the conditional request failed")}
		}
	}
	f.items[k] = in.Item
	return &dynamodb.PutItemOutput{}, nil
}

func (f *fakeDB) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, time.Now())
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}, UnprocessedKeys: map[string]types.KeysAndAttributes{}}
	for table, ka := range in.RequestItems {
		keys := ka.Keys
		if f.unprocessed != nil {
			if n := f.unprocessed(len(f.gets), len(keys)); n > 0 {
				out.UnprocessedKeys[table] = types.KeysAndAttributes{Keys: keys[len(keys)-n:], ConsistentRead: ka.ConsistentRead}
				keys = keys[:len(keys)-n]
			}
		}
		for _, k := range keys {
			if item, ok := f.items[pk(k)]; ok {
				out.Responses[table] = append(out.Responses[table], item)
			}
		}
	}
	return out, nil
}

func (f *fakeDB) putTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.puts...)
}

func throttled() error {
	return &types.ProvisionedThroughputExceededException{Message: aws.String("the level of configured provisioned throughput for the table was exceeded")}
}

func fakeSink(t *testing.T, db *fakeDB) *Sink {
	t.Helper()
	s, err := New(db, Options{Table: "T", KeyType: "B", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func upsertOf(key string, ver uint64) pipeline.Event {
	return pipeline.Event{Key: []byte(key), Op: pipeline.OpUpsert, Origin: pipeline.OriginLive, Version: pipeline.ClockVersion(0, ver, true),
		Value: pipeline.Value{Type: pipeline.TypeString, String: []byte("value of " + key)}}
}

// A throttled write (ProvisionedThroughputExceededException) is retried
// by the sink alone (the SDK's retryer is off for PutItem, §7), with
// backoff from 50 ms, until it goes through; it is counted as a throttle
// and a retry, and the pace notes it.
func TestThrottledWriteIsRetriedUntilWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		db.refusePut = func(n int) error {
			if n <= 3 {
				return throttled()
			}
			return nil
		}
		s := fakeSink(t, db)
		res, err := s.Apply(context.Background(), []pipeline.Event{upsertOf("k", 10)})
		if err != nil || res[0].Outcome != pipeline.Applied {
			t.Fatalf("Apply: %v %v, want applied", res, err)
		}
		if st := s.Stats(); st.Writes != 1 || st.Throttles != 3 || st.Retries != 3 {
			t.Errorf("stats %+v, want 1 write, 3 throttles, 3 retries", st)
		}
		puts := db.putTimes()
		if len(puts) != 4 {
			t.Fatalf("%d PutItem calls, want 4", len(puts))
		}
		// Backoff from 50 ms, ×1.5 each time, ±50%.
		// (A bound of three times the least was short of 112.5 ms, the
		// second wait's most: a run drew 111.8 ms and failed.)
		for i, base := range []time.Duration{50 * time.Millisecond, 75 * time.Millisecond, 112500 * time.Microsecond} {
			if wait := puts[i+1].Sub(puts[i]); wait < base/2 || wait > base*3/2 {
				t.Errorf("call %d came %v after throttled call %d, want %v to %v", i+2, wait, i+1, base/2, base*3/2)
			}
		}
		s.pace.mu.Lock()
		noted := s.pace.lastThrottle
		s.pace.mu.Unlock()
		if !noted.Equal(puts[2]) {
			t.Errorf("the pace noted the last throttle at %v, want at the third call, %v", noted, puts[2])
		}
		found, err := s.Lookup(context.Background(), [][]byte{[]byte("k")})
		if err != nil || !found["k"].Exists {
			t.Fatalf("lookup after the write: %+v %v", found, err)
		}
	})
}

// Part of a batch throttled: every write of the batch is applied, each
// exactly once, whatever the order the calls came in.
func TestBatchPartlyThrottledIsAllWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		db.refusePut = func(n int) error {
			if n%2 == 1 && n < 10 {
				return throttled()
			}
			return nil
		}
		s := fakeSink(t, db)
		var evs []pipeline.Event
		for i := range 10 {
			evs = append(evs, upsertOf(fmt.Sprint("k", i), 10))
		}
		res, err := s.Apply(context.Background(), evs)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Outcome != pipeline.Applied {
				t.Errorf("%s: %v (%v), want applied", evs[i].Key, r.Outcome, r.Err)
			}
		}
		if st := s.Stats(); st.Writes != 10 || st.Throttles != 5 {
			t.Errorf("stats %+v, want 10 writes and 5 throttles", st)
		}
		if n := len(db.putTimes()); n != 15 {
			t.Errorf("%d PutItem calls, want 15 (10 writes, 5 refused)", n)
		}
	})
}

// A sink never skips a write: one DynamoDB keeps refusing is retried
// until the worker stops, and Apply then returns an error (no result),
// so that nothing is committed past it.
func TestWriteThrottledUntilStoppedReturnsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := newFakeDB()
		db.refusePut = func(int) error { return throttled() }
		s := fakeSink(t, db)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		res, err := s.Apply(ctx, []pipeline.Event{upsertOf("k", 10)})
		if !errors.Is(err, context.DeadlineExceeded) || res != nil {
			t.Fatalf("Apply: %v %v, want no result and the stop's error", res, err)
		}
		// Tried all along: backoff's MaxInterval is 10 s (±50%), and no
		// MaxElapsedTime (cenkalti/backoff's default gives up after 15m).
		puts := db.putTimes()
		if last := puts[len(puts)-1].Sub(start); last < time.Hour-15*time.Second {
			t.Errorf("the last of %d PutItem calls came %v after the first, want it tried until the hour ended", len(puts), last)
		}
	})
}

// BatchGetItem may leave some keys unprocessed (over capacity). Lookup
// (reconcile's reads of the target) asks for them again, with backoff,
// until every key is answered: none is reported absent for want of a
// read. Keys still unprocessed after about two minutes are an error (Lookup
// serves reconcile, which may stop; a sink's writes never give up).
func TestLookupAsksAgainForUnprocessedKeys(t *testing.T) {
	t.Run("until read", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			db := newFakeDB()
			s := fakeSink(t, db)
			var evs []pipeline.Event
			var keys [][]byte
			for i := range 150 {
				evs = append(evs, upsertOf(fmt.Sprint("k", i), 10))
				keys = append(keys, []byte(fmt.Sprint("k", i)))
			}
			if _, err := s.Apply(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, []byte("absent"))
			db.unprocessed = func(n, keys int) int {
				if n <= 4 {
					return keys / 2
				}
				return 0
			}
			found, err := s.Lookup(context.Background(), keys)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys[:150] {
				if f := found[string(k)]; !f.Exists || string(f.Value.String) != "value of "+string(k) {
					t.Errorf("%s: %+v, want its value", k, f)
				}
			}
			if f, ok := found["absent"]; !ok || f.Exists {
				t.Errorf("absent: %+v %v, want reported absent", f, ok)
			}
			if len(db.gets) < 5 {
				t.Fatalf("%d BatchGetItem calls, want the unprocessed keys asked for again", len(db.gets))
			}
			// Lookup's backoff was meant to start at 50 ms but began at
			// cenkalti/backoff's default, 500 ms: InitialInterval was set
			// after NewExponentialBackOff had taken the default, and
			// nothing reset it. A reconcile of a target that answers in
			// part waited ten times longer than meant.
			if wait := db.gets[1].Sub(db.gets[0]); wait > 75*time.Millisecond {
				t.Errorf("the unprocessed keys were asked for again after %v, want 50 ms ±50%%", wait)
			}
		})
	})
	t.Run("gives up after two minutes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			db := newFakeDB()
			db.unprocessed = func(_, keys int) int { return keys }
			s := fakeSink(t, db)
			start := time.Now()
			_, err := s.Lookup(context.Background(), [][]byte{[]byte("k")})
			if err == nil || !strings.Contains(err.Error(), "still unprocessed after retrying for 2m") {
				t.Fatalf("Lookup: %v, want an error saying the keys stayed unprocessed", err)
			}
			// backoff stops when the next wait would pass MaxElapsedTime.
			if d := time.Since(start); d < time.Minute || d > 2*time.Minute {
				t.Errorf("gave up after %v, want just under 2m", d)
			}
		})
	})
}
