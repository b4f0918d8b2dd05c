package kafka

import (
	"errors"
	"io"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Where a replay moves the group: to the beginning, to a time, to named
// offsets; the plan keeps what the group committed and the ends, and
// moves nothing by itself.
func TestPlanReplay(t *testing.T) {
	cl, ctx := eventsCluster(t)
	t0 := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i, at := range []time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute)} {
		recs = append(recs, &kgo.Record{Topic: "events", Partition: 0, Value: []byte{byte(i)}, Timestamp: at})
	}
	recs = append(recs, &kgo.Record{Topic: "events", Partition: 1, Value: []byte("x"), Timestamp: t0})
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := CommitGroupOffsets(ctx, cl, "sinks", "events", map[int32]int64{0: 2}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		to    ReplayTarget
		from  map[int32]int64
		apply int64
	}{
		{"beginning", ReplayTarget{Beginning: true}, map[int32]int64{0: 0, 1: 0, 2: 0}, 4},
		{"at a time", ReplayTarget{At: t0.Add(time.Minute)}, map[int32]int64{0: 1, 1: 1, 2: 0}, 2},
		{"offsets", ReplayTarget{Offsets: "0:1, 1:0"}, map[int32]int64{0: 1, 1: 0}, 3},
		{"an offset at the end", ReplayTarget{Offsets: "2:0"}, map[int32]int64{2: 0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PlanReplay(ctx, cl, "sinks", "events", tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(p.From, tc.from) || p.ToApply() != tc.apply {
				t.Errorf("from %v, %d to apply; want %v, %d", p.From, p.ToApply(), tc.from, tc.apply)
			}
			if !maps.Equal(p.Committed, map[int32]int64{0: 2}) || !maps.Equal(p.End, map[int32]int64{0: 3, 1: 1, 2: 0}) {
				t.Errorf("committed %v, end %v", p.Committed, p.End)
			}
		})
	}
	committed, err := CommittedOffsets(ctx, cl, "sinks", "events")
	if err != nil || !maps.Equal(committed, map[int32]int64{0: 2}) {
		t.Fatalf("planning moved the group: %v, %v", committed, err)
	}
}

// Offsets that do not parse or do not fit the topic are the caller's
// mistake, an *OffsetsError whose message starts with "offsets" (cutover
// replay prefixes it with "--to-").
func TestParseOffsetsRefuses(t *testing.T) {
	end := map[int32]int64{0: 3, 1: 1}
	for _, tc := range []struct{ in, want string }{
		{"0", `offsets "0": want partition:offset,… with non-negative numbers`},
		{"0:x", `offsets "0:x": want partition:offset,… with non-negative numbers`},
		{"0:-1", `offsets "0:-1": want partition:offset,… with non-negative numbers`},
		{"0:1,", `offsets "0:1,": want partition:offset,… with non-negative numbers`},
		{"5:0", "offsets: the topic has no partition 5"},
		{"0:1,1:2", "offsets: partition 1 ends at offset 1, not 2"},
	} {
		_, err := parseOffsets(tc.in, end)
		var oe *OffsetsError
		if !errors.As(err, &oe) || err.Error() != tc.want {
			t.Errorf("%q: %v; want %q", tc.in, err, tc.want)
		}
	}
}

// A group with a member that does not leave within the session timeout
// is refused, naming the member; one without members is not waited for.
func TestWaitGroupIdleRefusesABusyGroup(t *testing.T) {
	cl, ctx := eventsCluster(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := waitGroupIdle(ctx, cl, "sinks", time.Hour, time.Hour, time.Hour, log); err != nil {
		t.Fatalf("an empty group: %v", err)
	}
	t.Cleanup(joinGroup(ctx, t, cl, "sinks").Close)
	err := waitGroupIdle(ctx, cl, "sinks", 100*time.Millisecond, 0, 10*time.Millisecond, log)
	var busy *GroupBusyError
	if !errors.As(err, &busy) || len(busy.Members) != 1 || busy.Group != "sinks" {
		t.Fatalf("a member that stays: %v", err)
	}
}
