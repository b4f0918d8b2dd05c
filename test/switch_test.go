package test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// switchKeys is how many keys the writer of TestSwitch changes
// ("d:0" … "d:299"): few, because DynamoDB Local takes about 45 writes a
// second into a table with a stream.
const switchKeys = 300

// expiries are the expiries the writers set, by sequence number: a write
// without one is absent.
type expiries struct {
	mu sync.Mutex
	at map[int64]time.Time
}

func (e *expiries) set(seq int64, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.at[seq] = at
}

func (e *expiries) get(seq int64) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.at[seq]
}

// held is what a store holds for a writer's key: the sequence number and
// its expiry (zero: none), ok false when the key is absent.
type held struct {
	seq      int64
	expireAt time.Time
	ok       bool
}

// checkHolds fails t unless store holds, for every key a writer changed,
// exactly the last write acknowledged (writers are stopped: nothing is in
// flight), with its expiry within 2 s (DynamoDB keeps whole seconds,
// rounded up), and no key whose last acknowledged write deleted it. A
// write sent but not acknowledged may have landed: a later sequence
// number, or a key deleted since, is accepted.
func checkHolds(t *testing.T, store string, a *ackedWrites, exp *expiries, read func(key string) (held, error)) {
	t.Helper()
	var bad []string
	writes := a.snapshot()
	for key, w := range writes {
		h, err := read(key)
		var problem string
		switch {
		case err != nil:
			last := "set"
			if w.deleted {
				last = "deleted it"
			}
			problem = fmt.Sprintf("%v (the last write acknowledged, %d, %s)", err, w.seq, last)
		case !h.ok && (w.deleted || a.deletedSince(key, w.seq)):
		case !h.ok:
			problem = fmt.Sprintf("missing, but write %d was acknowledged", w.seq)
		case w.deleted && h.seq <= w.seq:
			problem = fmt.Sprintf("holds write %d, but the delete %d was acknowledged after it", h.seq, w.seq)
		case h.seq < w.seq:
			problem = fmt.Sprintf("holds write %d, older than write %d acknowledged", h.seq, w.seq)
		case h.seq == w.seq:
			want := exp.get(w.seq)
			switch {
			case want.IsZero() && !h.expireAt.IsZero():
				problem = fmt.Sprintf("write %d set no expiry, the key expires at %v", w.seq, h.expireAt)
			case !want.IsZero() && h.expireAt.IsZero():
				problem = fmt.Sprintf("write %d set an expiry at %v, the key has none", w.seq, want)
			case !want.IsZero() && (h.expireAt.Sub(want) > 2*time.Second || want.Sub(h.expireAt) > 2*time.Second):
				problem = fmt.Sprintf("write %d set an expiry at %v, the key expires at %v", w.seq, want, h.expireAt)
			}
		}
		if problem != "" {
			bad = append(bad, fmt.Sprintf("key %s: %s", key, problem))
		}
	}
	if len(bad) > 0 {
		// Examples of keys whose last write set them, and of deleted ones.
		slices.SortFunc(bad, func(a, b string) int {
			return strings.Compare(fmt.Sprint(!strings.Contains(a, "deleted it"), a), fmt.Sprint(!strings.Contains(b, "deleted it"), b))
		})
		examples := slices.Concat(bad[:min(len(bad), 4)], bad[min(len(bad), max(4, len(bad)-8)):])
		t.Errorf("%s: %d of %d keys do not hold the last write acknowledged, for example:\n%s",
			store, len(bad), len(writes), strings.Join(slices.Compact(examples), "\n"))
	}
}

// writeRedisSwitch is the application before the switch: it sets keys
// d:0 … d:(switchKeys-1) of cl to sequence numbers — some with an
// expiry an hour ahead — and deletes a seventh of the time, until
// the returned function is called.
func writeRedisSwitch(cl *goredis.Client, a *ackedWrites, exp *expiries, perSecond float64) (stop func()) {
	return pacedWriters(2, perSecond, 1, func(ctx context.Context, g, i int) {
		n := g + 2*i // the writers' writes numbered in turn
		// n%7 picks the operation: switchKeys is prime to 7, so every
		// key is set, set with an expiry and deleted in turn (a delete
		// of a key never set would be no change at all).
		key := fmt.Sprintf("d:%d", n*13%switchKeys)
		del := n%7 == 3
		seq := a.begin(key, del)
		var ttl time.Duration
		if n%7 == 1 || n%7 == 5 {
			ttl = time.Hour
		}
		var err error
		if del {
			err = cl.Del(ctx, key).Err()
		} else {
			err = cl.Set(ctx, key, seq, ttl).Err()
		}
		if err == nil {
			if ttl > 0 {
				exp.set(seq, time.Now().Add(ttl))
			}
			a.ack(key, seq, del)
		}
	})
}

// writeTableSwitch is the application after the switch: the same keys as
// items of table, in the shape cutover's generic mapping gave them (pk,
// cutover_type, value, expire_at), put and deleted the same way, slowly.
func writeTableSwitch(db *dynamodb.Client, table string, a *ackedWrites, exp *expiries, perSecond float64) (stop func()) {
	return pacedWriters(1, perSecond, 1, func(ctx context.Context, _, n int) {
		key := fmt.Sprintf("d:%d", (n*11+5)%switchKeys)
		pk := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}}
		del := n%7 == 3
		seq := a.begin(key, del)
		var at time.Time
		var err error
		if del {
			_, err = db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: pk})
		} else {
			item := map[string]types.AttributeValue{
				"pk":           pk["pk"],
				"cutover_type": &types.AttributeValueMemberS{Value: "string"},
				"value":        &types.AttributeValueMemberB{Value: []byte(strconv.FormatInt(seq, 10))},
			}
			if n%7 == 1 || n%7 == 5 {
				at = time.Now().Add(time.Hour).Truncate(time.Second)
				item["expire_at"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(at.Unix(), 10)}
			}
			_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item})
		}
		if err == nil {
			if !at.IsZero() {
				exp.set(seq, at)
			}
			a.ack(key, seq, del)
		}
	})
}

// createSwitchTable creates the new store as docs/switch.md asks: the
// generic mapping's key (pk, S), TTL on expire_at, and a stream with both
// images on, so that the reverse pipeline can follow it after the switch.
func createSwitchTable(t *testing.T, db *dynamodb.Client, table string) {
	t.Helper()
	ctx := testCtx(t, 5*time.Minute)
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		StreamSpecification:  &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages},
	})
	must(t, err)
	must(t, dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 4*time.Minute))
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("expire_at"), Enabled: aws.Bool(true)}})
	must(t, err)
}

// tableHolds reads a writer's key from the table as the generic mapping
// wrote it: a tombstone (cutover_deleted) is an absent key.
func tableHolds(t *testing.T, db *dynamodb.Client, table string) func(key string) (held, error) {
	return func(key string) (held, error) {
		out, err := db.GetItem(testCtx(t, time.Minute), &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}}})
		if err != nil {
			return held{}, err
		}
		it := out.Item
		if it == nil {
			return held{}, nil
		}
		if d, ok := it["cutover_deleted"].(*types.AttributeValueMemberBOOL); ok && d.Value {
			return held{}, nil
		}
		if typ, _ := it["cutover_type"].(*types.AttributeValueMemberS); typ == nil || typ.Value != "string" {
			return held{}, fmt.Errorf("item is not a string: %v", it)
		}
		v, _ := it["value"].(*types.AttributeValueMemberB)
		if v == nil {
			return held{}, fmt.Errorf("item has no binary value: %v", it)
		}
		seq, err := strconv.ParseInt(string(v.Value), 10, 64)
		if err != nil {
			return held{}, fmt.Errorf("item holds %q, not a sequence number", v.Value)
		}
		h := held{seq: seq, ok: true}
		if e, ok := it["expire_at"].(*types.AttributeValueMemberN); ok {
			secs, err := strconv.ParseInt(e.Value, 10, 64)
			if err != nil {
				return held{}, fmt.Errorf("expire_at %q is not epoch seconds", e.Value)
			}
			h.expireAt = time.Unix(secs, 0)
		}
		return h, nil
	}
}

// redisHolds reads a writer's key from Redis: a string holding a sequence
// number, with its expiry.
func redisHolds(t *testing.T, cl *goredis.Client) func(key string) (held, error) {
	return func(key string) (held, error) {
		ctx := testCtx(t, time.Minute)
		typ, err := cl.Type(ctx, key).Result()
		if err != nil {
			return held{}, err
		}
		switch typ {
		case "none":
			return held{}, nil
		case "string":
		case "hash":
			h, _ := cl.HGetAll(ctx, key).Result()
			return held{}, fmt.Errorf("a hash, not the string the application wrote: %v", h)
		default:
			return held{}, fmt.Errorf("a %s, not the string the application wrote", typ)
		}
		v, err := cl.Get(ctx, key).Result()
		if err != nil {
			return held{}, err
		}
		seq, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return held{}, fmt.Errorf("holds %q, not a sequence number", v)
		}
		h := held{seq: seq, ok: true}
		ms, err := cl.PTTL(ctx, key).Result()
		if err != nil {
			return held{}, err
		}
		if ms > 0 {
			h.expireAt = time.Now().Add(ms)
		}
		return h, nil
	}
}

// shadowRounds reads the rounds `reconcile --every --output json` printed.
func shadowRounds(t *testing.T, stdout string) []reconcileReport {
	t.Helper()
	var rounds []reconcileReport
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		var rep reconcileReport
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			t.Fatalf("reconcile --every printed a line that is not a report: %v\n%s", err, line)
		}
		rounds = append(rounds, rep)
	}
	return rounds
}

// differences is how many keys of a report still differ.
func differences(rep reconcileReport) int64 {
	var n int64
	for kind, c := range rep.Counts {
		if kind != "not-comparable" {
			n += c
		}
	}
	return n
}

// waitLagSettled waits, as docs/switch.md's first step does, until
// `cutover status` shows the sink group less than a second of the
// writer's writes behind, with no dead letters.
func waitLagSettled(t *testing.T, p pipelineArgs, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		res := stack.Run(testCtx(t, time.Minute), t, append([]string{"status", "--output", "json"}, p.args...)...)
		var st struct {
			Lag         int64 `json:"lag"`
			DeadLetters int64 `json:"dead_letters"`
		}
		if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &st) != nil {
			t.Fatalf("status exited %d:\n%s\n%s", res.Code, res.Stdout, res.Stderr)
		}
		if st.DeadLetters != 0 {
			t.Fatalf("%d dead letters:\n%s", st.DeadLetters, res.Stdout)
		}
		if st.Lag <= 20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink group is still %d records behind after %v", st.Lag, within)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// drainSwitch runs `cutover drain` on a pipeline and fails unless it
// exits 0; it returns how long the drain took.
func drainSwitch(t *testing.T, p pipelineArgs) time.Duration {
	t.Helper()
	start := time.Now()
	res := stack.Run(testCtx(t, 4*time.Minute), t, append([]string{"drain", "--timeout", "3m"}, p.args...)...)
	if res.Code != 0 || !strings.Contains(res.Stdout, "drained in") {
		t.Fatalf("drain exited %d:\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	t.Logf("%s", strings.TrimSpace(res.Stdout))
	return time.Since(start)
}

// stopClean stops a process with SIGTERM and fails unless it exits 0.
func stopClean(t *testing.T, what string, proc *stack.Proc) {
	t.Helper()
	if code := proc.Stop(); code != 0 {
		out, errOut := proc.Output()
		t.Fatalf("%s exited %d on SIGTERM:\n%s\n%s", what, code, out, stack.Tail(errOut, 30))
	}
}

// TestSwitch walks docs/switch.md's runbook as a team would,
// from a Redis to a DynamoDB table and back, under a writer that records
// every write its store acknowledged:
//
//  1. replicate (source with --no-sink, one `cutover sink` worker) copies
//     the Redis — seeded, and changed all along by the application's
//     writer (sets, some with an expiry, and deletes) — into a table
//     created beforehand with a stream;
//  2. `reconcile --sample --every` shadow-validates while both run;
//  3. the switch: the writer stops on Redis, `drain` exits 0, a full
//     `reconcile` exits 0, and the table holds every acknowledged write
//     key by key (value, expiry, deleted keys absent); the forward
//     pipeline stops;
//  4. the reverse pipeline (table → the same, old Redis, reading the
//     table as Redis keys: --source-format redis) starts, and the
//     application writes to the table;
//  5. the roll-back: the writer stops, `drain` and `reconcile` of the
//     reverse pipeline exit 0, and the old Redis holds every write
//     acknowledged in either phase, as the application wrote it (a string
//     with its expiry, deleted keys absent), and the seeded keys as they
//     were.
func TestSwitch(t *testing.T) {
	t.Parallel()
	stack.LoadDynamoDB(t, 1)
	begin := time.Now()
	phase := begin
	lap := func(what string) {
		t.Logf("%s: %v (total %v)", what, time.Since(phase).Round(time.Millisecond), time.Since(begin).Round(time.Second))
		phase = time.Now()
	}
	db := dynamoClient(t)
	old := seedFarExpiries(t, datagen.Spec{Keys: 300, Seed: 91, TTLFraction: 0.2, MaxElements: 5})
	seeded := redisContents(testCtx(t, time.Minute), t, old.Client)
	fwd := newPipeline(t, old)
	createSwitchTable(t, db, fwd.table)
	lap("seeded the Redis, created the table")

	// 1. Replicate, under the application's writer.
	acked, exp := newAckedWrites(), &expiries{at: map[int64]time.Time{}}
	stopRedisWriter := writeRedisSwitch(old.Client, acked, exp, 10)
	defer stopRedisWriter()
	sink := stack.Start(t, nil, append([]string{"sink", "--worker-id", "0"}, fwd.args...)...)
	source := stack.Start(t, nil, append([]string{"replicate", "--no-sink"}, fwd.args...)...)
	waitLog(t, source, 2*time.Minute, func(s string) bool { return strings.Contains(s, "snapshot published") })
	waitLagSettled(t, fwd, 4*time.Minute)
	lap("1. replicate: snapshot published and applied, lag settled")

	// 2. Shadow validation: rounds of a sample while both stores run.
	shadow := stack.Start(t, nil, append([]string{"reconcile", "--sample", "100", "--every", "1s", "--output", "json"}, fwd.args...)...)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, _ := shadow.Output()
		if strings.Count(out, "\n") >= 2 {
			break
		}
		if time.Now().After(deadline) || shadow.Exited() {
			out, errOut := shadow.Output()
			t.Fatalf("reconcile --every did not report two rounds within 3m:\n%s\n%s", out, stack.Tail(errOut, 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopClean(t, "reconcile --every", shadow)
	out, _ := shadow.Output()
	for i, rep := range shadowRounds(t, out) {
		// Re-checks clear changes in flight: with the pipeline keeping
		// up, a round finds nothing.
		if rep.Compared == 0 || differences(rep) != 0 {
			t.Errorf("shadow round %d: %d keys compared, %d differ: %+v", i+1, rep.Compared, differences(rep), rep)
		}
		t.Logf("shadow round %d: %d keys compared, %d cleared on re-check, %d differ", i+1, rep.Compared, rep.Cleared, differences(rep))
	}
	lap("2. shadow validation")

	// 3. The switch: writes stop on the old store, drain, the final gate.
	stopRedisWriter()
	t.Logf("the application made %d writes to Redis", acked.seq.Load())
	took := drainSwitch(t, fwd)
	lap(fmt.Sprintf("3. drain (forward, %v)", took.Round(time.Millisecond)))
	if rep := reconcileJSON(t, fwd, 0); rep.Compared < int64(len(seeded)) || rep.Equal != rep.Compared {
		t.Fatalf("the final gate compared %d keys (%d seeded), %d equal: %+v", rep.Compared, len(seeded), rep.Equal, rep)
	}
	checkHolds(t, "the table", acked, exp, tableHolds(t, db, fwd.table))
	stopClean(t, "replicate --no-sink (forward)", source)
	stopClean(t, "sink (forward)", sink)
	lap("3. reconcile and key-by-key check (forward)")

	// 4. The reverse pipeline keeps the old store current; the
	// application now writes to the table.
	rev := newTablePipeline(t, fwd.table, "--source-format", "redis", "--target-redis-addr", old.Addr)
	reverse := stack.Start(t, nil, append([]string{"replicate"}, rev.args...)...)
	waitLog(t, reverse, 2*time.Minute, func(s string) bool { return strings.Contains(s, "answering cutover drain") })
	before := acked.seq.Load()
	stopTableWriter := writeTableSwitch(db, fwd.table, acked, exp, 10)
	defer stopTableWriter()
	waitLog(t, reverse, 3*time.Minute, func(s string) bool { return strings.Contains(s, "snapshot published") })
	lap("4. reverse replicate: snapshot published")
	for deadline := time.Now().Add(2 * time.Minute); acked.seq.Load()-before < 200; {
		if time.Now().After(deadline) {
			t.Fatalf("the application made %d writes to the table within 2m", acked.seq.Load()-before)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// 5. The roll-back: writes stop on the new store, drain, the gate,
	// and the old store holds everything.
	stopTableWriter()
	t.Logf("the application made %d writes to the table", acked.seq.Load()-before)
	lap("4. writes to the table")
	took = drainSwitch(t, rev)
	lap(fmt.Sprintf("5. drain (reverse, %v)", took.Round(time.Millisecond)))
	if rep := reconcileJSON(t, rev, 0); rep.Compared == 0 || rep.Equal != rep.Compared {
		t.Fatalf("the roll-back's gate: %+v", rep)
	} else {
		t.Logf("the roll-back's gate: %d keys compared, all equal", rep.Compared)
	}
	checkHolds(t, "the old Redis", acked, exp, redisHolds(t, old.Client))
	now := redisContents(testCtx(t, time.Minute), t, old.Client)
	maps.DeleteFunc(now, func(k, _ string) bool { return strings.HasPrefix(k, "d:") })
	if !maps.Equal(seeded, now) {
		t.Errorf("the seeded keys in the old Redis after the roll-back are not what they were:\n%s", diffContents(seeded, now))
	}
	stopClean(t, "replicate (reverse)", reverse)
	lap("5. reconcile and key-by-key check (reverse)")
}
