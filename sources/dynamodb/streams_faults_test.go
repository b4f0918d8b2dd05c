package dynamodb

// How the shard loop answers DynamoDB Streams' failures, over the fakes
// and on a fake clock (testing/synctest): time only passes when every
// goroutine waits, so a backoff of seconds costs no real time, and the
// waits the loop takes can be measured exactly.

import (
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
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/cutover/cutover/pipeline"
)

// faultStreams wraps a streamsAPI: it answers calls with the errors a
// script returns, and keeps when each call was made. A call is named by
// its operation and shard ("GetRecords s1", "GetShardIterator s1",
// "DescribeStream"); the script of a name gets the call's number
// (1-based) and returns the error to answer instead of the call, or nil
// to make it.
type faultStreams struct {
	streamsAPI
	mu     sync.Mutex
	script map[string]func(n int) error
	at     map[string][]time.Time // when each call of a name was made
	types  map[string][]streamtypes.ShardIteratorType
}

func newFaultStreams(inner streamsAPI) *faultStreams {
	return &faultStreams{streamsAPI: inner, script: map[string]func(int) error{}, at: map[string][]time.Time{},
		types: map[string][]streamtypes.ShardIteratorType{}}
}

// fail answers the calls of name numbered in ns with err.
func (f *faultStreams) fail(name string, err error, ns ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[name] = func(n int) error {
		for _, m := range ns {
			if n == m {
				return err
			}
		}
		return nil
	}
}

// call records a call of name and returns the error scripted for it.
func (f *faultStreams) call(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.at[name] = append(f.at[name], time.Now())
	if s := f.script[name]; s != nil {
		return s(len(f.at[name]))
	}
	return nil
}

// calls returns when the calls of name were made.
func (f *faultStreams) calls(name string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.at[name]...)
}

// iteratorTypes returns the types of the iterators asked for on shard id.
func (f *faultStreams) iteratorTypes(id string) []streamtypes.ShardIteratorType {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]streamtypes.ShardIteratorType(nil), f.types[id]...)
}

func (f *faultStreams) DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, o ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	if err := f.call("DescribeStream"); err != nil {
		return nil, err
	}
	return f.streamsAPI.DescribeStream(ctx, in, o...)
}

func (f *faultStreams) GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, o ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	id := aws.ToString(in.ShardId)
	f.mu.Lock()
	f.types[id] = append(f.types[id], in.ShardIteratorType)
	f.mu.Unlock()
	if err := f.call("GetShardIterator " + id); err != nil {
		return nil, err
	}
	return f.streamsAPI.GetShardIterator(ctx, in, o...)
}

func (f *faultStreams) GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, o ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	id, _, _ := strings.Cut(aws.ToString(in.ShardIterator), "/")
	if err := f.call("GetRecords " + id); err != nil {
		return nil, err
	}
	return f.streamsAPI.GetRecords(ctx, in, o...)
}

// closeShard gives shard id an ending sequence number: once its records
// are read, GetRecords answers no next iterator.
func (f *fakeStreams) closeShard(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, sh := range f.shards {
		if aws.ToString(sh.ShardId) == id {
			f.shards[i].SequenceNumberRange = &streamtypes.SequenceNumberRange{StartingSequenceNumber: aws.String("1"),
				EndingSequenceNumber: aws.String("999999999999999999999999")}
		}
	}
}

// seqOf is the sequence number fakeStreams.put gives a shard's n-th
// record (1-based).
func seqOf(n int) string { return fmt.Sprintf("1%020d", n) }

// faultRun is a Stream over faultStreams (one record per GetRecords call)
// on the harness's table, publisher and checkpoint store, with the gaps
// it reports.
type faultRun struct {
	h       *harness
	streams *faultStreams
	st      *Stream
	mu      sync.Mutex
	gaps    []string
}

func newFaultRun(h *harness) *faultRun {
	r := &faultRun{h: h, streams: newFaultStreams(newPacedStreams(h.streams))}
	r.st = NewStream(r.streams, h.table, h.def, StreamOptions{Name: "p", Epoch: pipeline.NewEpoch(0),
		PollInterval: 10 * time.Millisecond, RefreshEvery: time.Second, Settle: 15 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
		OnGap: func(_ context.Context, why string) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.gaps = append(r.gaps, why)
			return nil
		}}, h.pub, h.ck)
	return r
}

func (r *faultRun) gapReasons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.gaps...)
}

// run calls Start, runs the stream until cond holds (a minute on the fake
// clock at most) and stops it; a failure of Run fails the test.
func (r *faultRun) run(t *testing.T, cond func() bool) {
	t.Helper()
	if _, err := r.st.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	r.runStarted(t, cond)
}

// runStarted is run without Start.
func (r *faultRun) runStarted(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.st.Run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("Run returned %v before the condition held", err)
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("the condition did not hold within a minute (on the fake clock); published %v", r.published())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// published is the items of the events published so far, in order.
func (r *faultRun) published() []string {
	var out []string
	for _, e := range r.h.pub.Events() {
		out = append(out, itemName(e))
	}
	return out
}

func (r *faultRun) publishedAll(n int) func() bool {
	return func() bool { return len(r.h.pub.Events()) >= n }
}

// fromTrimHorizon saves positions that read shards from their trim
// horizon, every record to be published (a restart in their middle).
func fromTrimHorizon(t *testing.T, h *harness, shards ...string) {
	t.Helper()
	pos := streamPosition{StreamARN: fakeTableDef.StreamARN, Updated: time.Now(), Shards: map[string]*shardState{}}
	for _, id := range shards {
		pos.Shards[id] = &shardState{Since: time.Now()}
	}
	h.savePositions(t, pos)
}

// oneShard is a faultRun over one open shard s1 holding n records, k0
// to k(n-1), to be read from its trim horizon.
func oneShard(t *testing.T, n int) *faultRun {
	t.Helper()
	h := newHarness()
	h.streams.addShard("s1", "", false)
	for i := range n {
		h.streams.put("s1", fmt.Sprint("k", i), false)
	}
	fromTrimHorizon(t, h, "s1")
	return newFaultRun(h)
}

func eq[T any](got, want []T) bool { return fmt.Sprint(got) == fmt.Sprint(want) }

// An iterator that expires before the shard gave any record (a LATEST
// iterator taken before a long scan, say) cannot be renewed after a
// sequence number: the shard is read again from its trim horizon, and
// the records created before the position was taken (less Settle) are
// skipped — the scan covers them — while every record after it is
// published. (An iterator that expires after records were read goes on
// after the last one: TestExpiredIteratorResumesFromLastPosition.)
func TestExpiredIteratorBeforeAnyRecordSkipsWhatPrecedesThePosition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.streams.addShard("s1", "", false)
		h.streams.age = -time.Hour // written an hour before the position
		h.streams.put("s1", "old0", false)
		h.streams.put("s1", "old1", false)
		h.streams.age = 0
		r := newFaultRun(h)
		if _, err := r.st.Start(context.Background()); err != nil { // LATEST on s1
			t.Fatal(err)
		}
		h.streams.put("s1", "new0", false)
		h.streams.put("s1", "new1", false)
		r.streams.fail("GetRecords s1", &streamtypes.ExpiredIteratorException{Message: aws.String("iterator expired")}, 1)
		r.runStarted(t, r.publishedAll(2))
		if got, want := r.published(), []string{"new0", "new1"}; !eq(got, want) {
			t.Fatalf("published %v, want %v: only the records after the position", got, want)
		}
		if got, want := r.streams.iteratorTypes("s1"), []streamtypes.ShardIteratorType{"LATEST", "TRIM_HORIZON"}; !eq(got, want) {
			t.Errorf("iterators asked %v, want %v", got, want)
		}
		if s := r.st.Stats(); s.Skipped != 2 || s.Gaps != 0 {
			t.Errorf("skipped %d, gaps %d; want the 2 older records skipped and no gap", s.Skipped, s.Gaps)
		}
	})
}

// TrimmedDataAccessException on GetRecords: the records past the
// iterator aged out of the stream before they were read. What the shard
// loop does today: it records a gap (OnGap, before the position is
// forgotten, so that a heal re-scans the table), forgets the shard's
// sequence number and reads on from the new trim horizon — every record
// still there is published, including ones published already (the same
// record has the same version: applying it again changes nothing).
func TestTrimmedRecordsAreAGapAndTheShardGoesOnFromItsTrimHorizon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := oneShard(t, 6)
		h := r.h
		// The third call, after k0 and k1 were read, finds k0 trimmed.
		r.streams.script["GetRecords s1"] = func(n int) error {
			if n != 3 {
				return nil
			}
			h.streams.mu.Lock()
			h.streams.trimmed["s1"] = 1
			h.streams.mu.Unlock()
			return &streamtypes.TrimmedDataAccessException{Message: aws.String("trimmed")}
		}
		r.run(t, r.publishedAll(7))
		if got, want := r.published(), []string{"k0", "k1", "k1", "k2", "k3", "k4", "k5"}; !eq(got, want) {
			t.Fatalf("published %v, want %v", got, want)
		}
		gaps := r.gapReasons()
		if len(gaps) != 1 || !strings.Contains(gaps[0], "shard s1") || !strings.Contains(gaps[0], "trimmed") {
			t.Errorf("gaps recorded %q, want one naming shard s1 and the trimmed records", gaps)
		}
		if got, want := r.streams.iteratorTypes("s1"), []streamtypes.ShardIteratorType{"TRIM_HORIZON", "TRIM_HORIZON"}; !eq(got, want) {
			t.Errorf("iterators asked %v, want %v", got, want)
		}
		if s := r.st.Stats(); s.Gaps != 1 {
			t.Errorf("%d gaps counted, want 1", s.Gaps)
		}
		if sh := h.streamPos(t).Shards["s1"]; sh == nil || sh.Seq != seqOf(6) {
			t.Errorf("saved position of s1 %+v, want after k5 (%s)", sh, seqOf(6))
		}
	})
}

// LimitExceededException on GetRecords (more than five reads a second on
// a shard, once the SDK's retryer gave up) is not a gap and not fatal:
// the shard waits — with backoff, 500 ms at first — and asks again with
// the same iterator. Nothing is lost or read twice.
func TestLimitExceededOnGetRecordsIsRetriedWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := oneShard(t, 3)
		r.streams.fail("GetRecords s1", &streamtypes.LimitExceededException{Message: aws.String("slow down")}, 2, 3)
		r.run(t, r.publishedAll(3))
		if got, want := r.published(), []string{"k0", "k1", "k2"}; !eq(got, want) {
			t.Fatalf("published %v, want %v", got, want)
		}
		if got := r.streams.iteratorTypes("s1"); len(got) != 1 {
			t.Errorf("iterators asked %v, want one: a throttled call is asked again with the same iterator", got)
		}
		if g := r.st.Stats().Gaps; g != 0 {
			t.Errorf("%d gaps counted for throttled reads", g)
		}
		calls := r.streams.calls("GetRecords s1")
		// the shard's backoff: 500 ms, then 750 ms, each ±50%.
		for i, least := range map[int]time.Duration{1: 250 * time.Millisecond, 2: 375 * time.Millisecond} {
			if wait := calls[i+1].Sub(calls[i]); wait < least {
				t.Errorf("call %d came %v after throttled call %d, want at least %v", i+2, wait, i+1, least)
			}
		}
	})
}

// LimitExceededException on DescribeStream. The SDK's retryer owns the
// retries of this call (docs/DESIGN.md §7); what reaches the source has
// outlasted them. While the stream runs, a failed listing is logged and
// tried again at the next refresh: not fatal. At Start, listing the shards
// is a start-up check: the error is returned, naming the table.
func TestLimitExceededOnDescribeStream(t *testing.T) {
	limit := &streamtypes.LimitExceededException{Message: aws.String("slow down")}
	t.Run("while running: tried again at the next refresh", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := oneShard(t, 1)
			r.streams.fail("DescribeStream", limit, 1, 2, 3)
			r.run(t, r.publishedAll(1))
			calls := r.streams.calls("DescribeStream")
			if len(calls) < 4 {
				t.Fatalf("%d DescribeStream calls, want 3 refused and one that lists the shard", len(calls))
			}
			for i := 1; i < 4; i++ {
				if wait := calls[i].Sub(calls[i-1]); wait != time.Second {
					t.Errorf("DescribeStream call %d came %v after the refused one, want RefreshEvery (1s)", i+1, wait)
				}
			}
		})
	})
	t.Run("at Start: returned", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness()
			h.streams.addShard("s1", "", false)
			r := newFaultRun(h)
			r.streams.fail("DescribeStream", limit, 1)
			_, err := r.st.Start(context.Background())
			var le *streamtypes.LimitExceededException
			if !errors.As(err, &le) || !strings.Contains(err.Error(), "describe stream of T") {
				t.Fatalf("Start: %v, want the LimitExceededException, naming the table", err)
			}
			if n := len(r.streams.calls("DescribeStream")); n != 1 {
				t.Errorf("%d DescribeStream calls, want 1: the SDK's retryer is the one that retries", n)
			}
		})
	})
}

// A child shard can be listed while its parent is still open (the
// listing is eventually consistent, and a parent may still be read when
// its child appears). The rule (Stream.ready): a shard whose parent is
// listed starts only once the parent is read to its end and all it
// published is durable; a child whose parent is no longer listed (aged
// out of the stream) starts at once. So an item's changes are published
// in order across a split.
func TestChildShardListedBeforeItsParentEndsWaitsForIt(t *testing.T) {
	t.Run("parent open", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness()
			h.streams.addShard("parent", "", false)
			for i := range 3 {
				h.streams.put("parent", fmt.Sprint("p", i), false)
			}
			fromTrimHorizon(t, h, "parent")
			h.streams.addShard("child", "parent", false)
			for i := range 2 {
				h.streams.put("child", fmt.Sprint("c", i), false)
			}
			r := newFaultRun(h)
			var closed bool
			r.run(t, func() bool {
				if closed {
					return len(r.h.pub.Events()) >= 6
				}
				if n := len(r.streams.calls("GetShardIterator child")) + len(r.streams.calls("GetRecords child")); n != 0 {
					t.Errorf("%d calls on the child while its parent is open; published %v", n, r.published())
					return true
				}
				// Once the parent read empty and was listed again with its
				// child several times, it ends.
				if len(r.h.pub.Events()) == 3 && len(r.streams.calls("DescribeStream")) >= 5 {
					h.streams.put("parent", "p3", false) // the parent's last write
					h.streams.closeShard("parent")
					closed = true
				}
				return false
			})
			if t.Failed() {
				return
			}
			if got, want := r.published(), []string{"p0", "p1", "p2", "p3", "c0", "c1"}; !eq(got, want) {
				t.Fatalf("published %v, want the parent's records, then the child's: %v", got, want)
			}
			if pos := h.streamPos(t); pos.Shards["parent"] == nil || !pos.Shards["parent"].Done {
				t.Errorf("the parent is not saved as read to its end: %+v", pos.Shards["parent"])
			}
		})
	})
	t.Run("parent aged out", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness()
			h.streams.addShard("child", "gone", false)
			h.streams.put("child", "c0", false)
			fromTrimHorizon(t, h, "child")
			r := newFaultRun(h)
			r.run(t, r.publishedAll(1))
			if got := r.published(); !eq(got, []string{"c0"}) {
				t.Fatalf("published %v, want c0", got)
			}
		})
	})
}
