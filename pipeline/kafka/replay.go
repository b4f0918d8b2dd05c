package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// GroupBusyError means a consumer group still has members after the
// wait WaitGroupIdle gives them: moving its offsets now would be undone
// by a running worker's next commit.
type GroupBusyError struct {
	Group   string
	Members []string
	// SessionTimeout is the session timeout the members were given.
	SessionTimeout time.Duration
}

func (e *GroupBusyError) Error() string {
	return fmt.Sprintf("%d sink workers of group %s are running (%s), still there after the session timeout (kafka.session_timeout, %s): "+
		"stop them first — a running worker would commit over the replayed offsets",
		len(e.Members), e.Group, strings.Join(e.Members, ", "), e.SessionTimeout)
}

// WaitGroupIdle returns nil once group has no members, the state its
// offsets may be moved in. A worker that was just stopped (or killed)
// may still be listed: it is given sessionTimeout, plus a margin, to go
// before a *GroupBusyError names who stayed. The wait is logged.
func WaitGroupIdle(ctx context.Context, cl *kgo.Client, group string, sessionTimeout time.Duration, log *slog.Logger) error {
	return waitGroupIdle(ctx, cl, group, sessionTimeout, 2*time.Second, 500*time.Millisecond, log)
}

// waitGroupIdle is WaitGroupIdle with its margin and poll interval.
func waitGroupIdle(ctx context.Context, cl *kgo.Client, group string, sessionTimeout, margin, interval time.Duration, log *slog.Logger) error {
	members, err := GroupMembers(ctx, cl, group)
	if err != nil || len(members) == 0 {
		return err
	}
	log.Info("waiting for sink workers to leave the group", "group", group, "members", len(members), "up_to", sessionTimeout)
	if members, err = WaitGroupEmpty(ctx, cl, group, sessionTimeout+margin, interval); err != nil {
		return err
	}
	if len(members) > 0 {
		return &GroupBusyError{Group: group, Members: members, SessionTimeout: sessionTimeout}
	}
	return nil
}

// ReplayTarget is where a replay moves a consumer group: set Beginning,
// Offsets or At.
type ReplayTarget struct {
	// Beginning: the first offset every partition still holds.
	Beginning bool
	// Offsets: "partition:offset,…"; partitions not named keep their
	// committed offsets. They must exist and the offsets be at most
	// their end, or PlanReplay returns an *OffsetsError.
	Offsets string
	// At, when neither of the others is set: the first record at or
	// after this time, in every partition.
	At time.Time
}

// OffsetsError is a ReplayTarget's Offsets that cannot be used: they do
// not parse, name a partition the topic does not have, or an offset past
// a partition's end. It is the caller's mistake, not the cluster's. The
// message starts with "offsets".
type OffsetsError struct{ msg string }

func (e *OffsetsError) Error() string { return e.msg }

// ReplayPlan is what a replay of a topic for a group moves.
type ReplayPlan struct {
	// Committed is what the group has committed; partitions it never
	// committed to are absent.
	Committed map[int32]int64
	// From is where the replay moves each partition it moves.
	From map[int32]int64
	// End is every partition's end offset.
	End map[int32]int64
}

// ToApply is how many records the replay applies again: those between
// From and End.
func (p ReplayPlan) ToApply() int64 {
	var n int64
	for part, from := range p.From {
		n += p.End[part] - from
	}
	return n
}

// PlanReplay reads where group stands on topic and where to moves it.
// It changes nothing: CommitGroupOffsets with the plan's From does.
func PlanReplay(ctx context.Context, cl *kgo.Client, group, topic string, to ReplayTarget) (ReplayPlan, error) {
	var p ReplayPlan
	var err error
	if p.Committed, err = CommittedOffsets(ctx, cl, group, topic); err != nil {
		return p, err
	}
	if p.End, err = EndOffsets(ctx, cl, topic); err != nil {
		return p, err
	}
	switch {
	case to.Beginning:
		p.From, err = StartOffsets(ctx, cl, topic)
	case to.Offsets != "":
		p.From, err = parseOffsets(to.Offsets, p.End)
	default:
		p.From, err = OffsetsAt(ctx, cl, topic, to.At)
	}
	return p, err
}

// parseOffsets reads "partition:offset,…"; partitions not named are left
// out (they keep their committed offsets).
func parseOffsets(s string, end map[int32]int64) (map[int32]int64, error) {
	out := map[int32]int64{}
	for _, part := range strings.Split(s, ",") {
		p, o, ok := strings.Cut(strings.TrimSpace(part), ":")
		pn, err1 := strconv.ParseInt(p, 10, 32)
		on, err2 := strconv.ParseInt(o, 10, 64)
		if !ok || err1 != nil || err2 != nil || on < 0 {
			return nil, &OffsetsError{fmt.Sprintf("offsets %q: want partition:offset,… with non-negative numbers", s)}
		}
		e, exists := end[int32(pn)]
		if !exists {
			return nil, &OffsetsError{fmt.Sprintf("offsets: the topic has no partition %d", pn)}
		}
		if on > e {
			return nil, &OffsetsError{fmt.Sprintf("offsets: partition %d ends at offset %d, not %d", pn, e, on)}
		}
		out[int32(pn)] = on
	}
	return out, nil
}
