package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DrainOptions configure Drain.
type DrainOptions struct {
	// Topic is the event topic; its control topic carries the request.
	Topic string
	// Group is the sink workers' consumer group.
	Group string
	// ReplicationFactor of the control topic, if Drain creates it; -1
	// takes the cluster's default.
	ReplicationFactor int16
	// ResendEvery is how often the request is sent again until a barrier
	// was seen on every partition (a source that started, or restarted,
	// after the first copy answers a later one); default 10s.
	ResendEvery time.Duration
	// CheckEvery is how often the group's committed offsets are read;
	// default 1s.
	CheckEvery time.Duration
	// Progress, if set, is called with the status after every check.
	Progress func(DrainStatus)
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// DrainStatus is where a drain stands.
type DrainStatus struct {
	// ID is the drain's ID, carried by its request and its barriers.
	ID string `json:"drain"`
	// Requests is how many times the request was sent.
	Requests int `json:"requests"`
	// Barriers is how many of the partitions that must carry a barrier
	// have shown one; Expected is how many must (0 while no barrier was
	// seen: the source says how many partitions it publishes to).
	Barriers int `json:"barriers"`
	Expected int `json:"barriers_expected"`
	// CaughtUp is how many partitions the group has applied up to their
	// target.
	CaughtUp   int              `json:"caught_up"`
	Partitions []DrainPartition `json:"partitions"`
	// Done: every partition is caught up.
	Done bool `json:"drained"`
}

// DrainPartition is one partition of a drain.
type DrainPartition struct {
	Partition int32 `json:"partition"`
	// Barrier is the offset of the partition's barrier; -1 while none was
	// seen, and on a partition the source sends no events to.
	Barrier int64 `json:"barrier_offset"`
	// Target is the offset the group must have committed: one past the
	// barrier, or, on a partition the source sends no events to, its end
	// offset when the drain started; -1 while not known yet.
	Target int64 `json:"target_offset"`
	// Committed is the group's committed offset; -1 for none.
	Committed int64 `json:"committed_offset"`
	// Lag is how many records the group has still to commit to reach the
	// target; while the target is not known, to reach the end offset.
	Lag      int64 `json:"lag"`
	CaughtUp bool  `json:"caught_up"`
	// Owner is the group member the partition is assigned to now; empty
	// when none is.
	Owner string `json:"owner,omitempty"`
}

// drainState is what a drain has learned: the offsets before its request
// and the barriers seen since.
type drainState struct {
	id       string
	start    map[int32]int64 // end offsets taken before the request was sent
	barriers map[int32]int64 // first barrier of this drain on each partition
	// partitions is the count the source publishes to (from its
	// barriers); 0 until one is seen.
	partitions int32
	requests   int
}

func newDrainState(id string, start map[int32]int64) *drainState {
	return &drainState{id: id, start: start, barriers: map[int32]int64{}}
}

// see records a barrier read at offset; barriers of other drains are
// ignored, and so are later copies (a re-sent request answered again).
func (d *drainState) see(b Barrier, offset int64) {
	if b.ID != d.id {
		return
	}
	if _, ok := d.barriers[b.Partition]; !ok {
		d.barriers[b.Partition] = offset
	}
	if b.Partitions > d.partitions {
		d.partitions = b.Partitions
	}
}

// expected is how many partitions must carry a barrier (0: not known).
func (d *drainState) expected() int {
	return int(min(d.partitions, int32(len(d.start))))
}

// barriersSeen reports whether every partition that must carry a barrier
// has shown one.
func (d *drainState) barriersSeen() bool {
	if d.partitions == 0 {
		return false
	}
	for p := range d.start {
		if _, ok := d.barriers[p]; !ok && p < d.partitions {
			return false
		}
	}
	return true
}

// target is the offset the group must have committed on p, or -1 while
// not known. A partition the source publishes to is done once the group
// committed past its barrier; one it does not (a topic grown since the
// source started) holds nothing the source published since, and is done
// once the group applied what it held when the drain started.
func (d *drainState) target(p int32) int64 {
	if d.partitions == 0 {
		return -1
	}
	if p >= d.partitions {
		return d.start[p]
	}
	if off, ok := d.barriers[p]; ok {
		return off + 1
	}
	return -1
}

// status says where the drain stands, given the group's committed
// offsets, the partitions' end offsets now (for the lag of a partition
// whose target is not known yet) and who owns each partition.
func (d *drainState) status(committed, end map[int32]int64, owners map[int32]string) DrainStatus {
	st := DrainStatus{ID: d.id, Requests: d.requests, Expected: d.expected()}
	for _, p := range slices.Sorted(maps.Keys(d.start)) {
		c, ok := committed[p]
		if !ok {
			c = -1
		}
		dp := DrainPartition{Partition: p, Barrier: -1, Target: d.target(p), Committed: c, Owner: owners[p]}
		if off, ok := d.barriers[p]; ok && p < d.partitions {
			dp.Barrier = off
			st.Barriers++
		}
		want := dp.Target
		if want < 0 {
			want = max(end[p], d.start[p])
		}
		dp.Lag = max(0, want-max(c, 0))
		dp.CaughtUp = dp.Target >= 0 && max(c, 0) >= dp.Target
		if dp.CaughtUp {
			st.CaughtUp++
		}
		st.Partitions = append(st.Partitions, dp)
	}
	st.Done = d.barriersSeen() && st.CaughtUp == len(st.Partitions)
	return st
}

// NewDrainID makes a drain ID: the time and random bytes, unique enough
// that two drains never mistake each other's barriers.
func NewDrainID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// Drain asks the pipeline's running source for a barrier on every
// partition and waits until the sink group has committed past each: then
// every change the source had seen when it answered — and so every change
// made before Drain was called — is applied to the target (or
// dead-lettered). It returns when that holds, or when ctx ends, with
// ErrNotDrained and the status at that moment.
//
// The end offsets are taken before the request is sent, and the barriers
// looked for from there, so none can be missed. The request goes to the
// control topic (created if missing) and is sent again every
// ResendEvery until every barrier is seen.
func Drain(ctx context.Context, cfg Config, opts DrainOptions) (DrainStatus, error) {
	if opts.ResendEvery <= 0 {
		opts.ResendEvery = 10 * time.Second
	}
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cl, err := Connect(ctx, cfg, kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return DrainStatus{}, err
	}
	defer cl.Close()
	if _, err := EnsureControlTopic(ctx, cl, opts.Topic, opts.ReplicationFactor); err != nil {
		return DrainStatus{}, err
	}
	start, err := EndOffsets(ctx, cl, opts.Topic)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return DrainStatus{}, fmt.Errorf("topic %s does not exist: no source of this pipeline has run (start `cutover replicate` first)", opts.Topic)
	}
	if err != nil {
		return DrainStatus{}, err
	}
	d := newDrainState(NewDrainID(), start)
	barriers, stopReading, err := readBarriers(ctx, cfg, opts.Topic, start)
	if err != nil {
		return DrainStatus{}, err
	}
	defer stopReading()
	log := opts.Logger.With("drain", d.id)

	resend := time.NewTimer(0)
	defer resend.Stop()
	check := time.NewTicker(opts.CheckEvery)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			st, err := d.check(final, cl, opts)
			cancel()
			if err != nil {
				log.Warn("reading the group's offsets for the report failed", "err", err)
			}
			if st.Done {
				return st, nil
			}
			return st, fmt.Errorf("%w: %w", ErrNotDrained, context.Cause(ctx))
		case rb := <-barriers:
			d.see(rb.Barrier, rb.offset)
			if d.barriersSeen() {
				stopReading()
			}
		case <-resend.C:
			if d.barriersSeen() {
				continue
			}
			req := DrainRequest{ID: d.id, Time: time.Now().UTC()}
			if err := cl.ProduceSync(ctx, drainRequestRecord(opts.Topic, req)).FirstErr(); err != nil {
				if ctx.Err() == nil {
					log.Warn("sending the drain request failed; trying again", "topic", ControlTopic(opts.Topic), "err", err)
				}
			} else {
				d.requests++
			}
			resend.Reset(opts.ResendEvery)
		case <-check.C:
			st, err := d.check(ctx, cl, opts)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("reading the group's offsets failed; trying again", "err", err)
				}
				continue
			}
			if opts.Progress != nil {
				opts.Progress(st)
			}
			if st.Done {
				return st, nil
			}
		}
	}
}

// check reads the group's committed offsets, the end offsets and the
// group's assignment, and returns the drain's status.
func (d *drainState) check(ctx context.Context, cl *kgo.Client, opts DrainOptions) (DrainStatus, error) {
	committed, err := CommittedOffsets(ctx, cl, opts.Group, opts.Topic)
	if err != nil {
		return d.status(nil, nil, nil), err
	}
	end, err := EndOffsets(ctx, cl, opts.Topic)
	if err != nil {
		return d.status(committed, nil, nil), err
	}
	owners, err := PartitionOwners(ctx, cl, opts.Group, opts.Topic)
	if err != nil {
		return d.status(committed, end, nil), err
	}
	return d.status(committed, end, owners), nil
}

type readBarrier struct {
	Barrier
	offset int64
}

// readBarriers reads topic from the offsets start and sends every
// barrier it finds, until stop is called or ctx ends.
func readBarriers(ctx context.Context, cfg Config, topic string, start map[int32]int64) (<-chan readBarrier, func(), error) {
	from := map[int32]kgo.Offset{}
	for p, off := range start {
		from[p] = kgo.NewOffset().At(off)
	}
	cl, err := Connect(ctx, cfg, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan readBarrier)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil || fetches.IsClientClosed() {
				return
			}
			for it := fetches.RecordIter(); !it.Done(); {
				r := it.Next()
				if b, ok := ParseBarrier(r); ok {
					select {
					case out <- readBarrier{Barrier: b, offset: r.Offset}:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		cl.Close()
	}
	return out, stop, nil
}

// PartitionOwners returns, for every partition of topic assigned to a
// member of group, the member (its instance ID, client ID and host, as
// GroupMembers writes them).
func PartitionOwners(ctx context.Context, cl *kgo.Client, group, topic string) (map[int32]string, error) {
	described, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	out := map[int32]string{}
	for _, g := range described {
		if g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound) {
			return nil, fmt.Errorf("describe group %s: %w", group, g.Err)
		}
		for _, m := range g.Members {
			a, ok := m.Assigned.AsConsumer()
			if !ok {
				continue
			}
			for _, t := range a.Topics {
				if t.Topic != topic {
					continue
				}
				for _, p := range t.Partitions {
					out[p] = memberName(m)
				}
			}
		}
	}
	return out, nil
}

func memberName(m kadm.DescribedGroupMember) string {
	id := m.ClientID + "@" + m.ClientHost
	if m.InstanceID != nil {
		id = *m.InstanceID + " (" + id + ")"
	}
	return id
}

// Missing lists the partitions that must carry a barrier and have not
// shown one yet, as text ("0, 2, 3"): every partition while no barrier
// was seen.
func (st DrainStatus) Missing() string {
	var out []string
	for _, p := range st.Partitions {
		if p.Target < 0 {
			out = append(out, fmt.Sprint(p.Partition))
		}
	}
	return strings.Join(out, ", ")
}
