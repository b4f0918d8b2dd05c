package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// Shard is one master of a Redis Cluster and the slots it serves. A
// standalone server is one shard with no slots.
type Shard struct {
	Addr  string
	ID    string
	Slots [][2]int
}

// Equal reports whether two shards are the same master serving the same
// slots.
func (s Shard) Equal(o Shard) bool {
	return s.Addr == o.Addr && s.ID == o.ID && slices.Equal(s.Slots, o.Slots)
}

// ClusterShards lists the cluster's masters and their slots (CLUSTER
// SLOTS), sorted by address.
func ClusterShards(ctx context.Context, cl goredis.Cmdable) ([]Shard, error) {
	slots, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS: %w", err)
	}
	byAddr := map[string]*Shard{}
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			continue
		}
		m := s.Nodes[0] // the master comes first
		sh := byAddr[m.Addr]
		if sh == nil {
			sh = &Shard{Addr: m.Addr, ID: m.ID}
			byAddr[m.Addr] = sh
		}
		sh.Slots = append(sh.Slots, [2]int{int(s.Start), int(s.End)})
	}
	out := make([]Shard, 0, len(byAddr))
	for _, sh := range byAddr {
		slices.SortFunc(sh.Slots, func(a, b [2]int) int { return a[0] - b[0] })
		out = append(out, *sh)
	}
	slices.SortFunc(out, func(a, b Shard) int { return strings.Compare(a.Addr, b.Addr) })
	return out, nil
}

// slotsSettled says why a sweep of slots on the server cl is connected
// to must wait ("" when it need not): a slot of this master is being
// migrated to or from another one (CLUSTER NODES shows it in brackets),
// or the master no longer serves exactly slots. Keys that moved away
// during a heal were neither re-read nor counted as elsewhere — the
// heal's SCAN no longer saw them — and a sweep of their slot would take
// them for deleted. No slots (a standalone server) means nothing to
// check.
func slotsSettled(ctx context.Context, cl goredis.Cmdable, slots [][2]int) (string, error) {
	if len(slots) == 0 {
		return "", nil
	}
	nodes, err := cl.ClusterNodes(ctx).Result()
	if err != nil {
		return "", fmt.Errorf("CLUSTER NODES: %w", err)
	}
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "myself") {
			continue
		}
		var have [][2]int
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				return fmt.Sprintf("slot migration in progress on this master (%s)", r), nil
			}
			lo, hi, found := strings.Cut(r, "-")
			if !found {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return "", fmt.Errorf("CLUSTER NODES: slot range %q", r)
			}
			have = append(have, [2]int{a, b})
		}
		if !slices.Equal(mergeRanges(have), mergeRanges(slots)) {
			return "this master's slots changed", nil
		}
		return "", nil
	}
	return "", fmt.Errorf("CLUSTER NODES has no line for this master")
}

// mergeRanges sorts slot ranges and joins adjacent ones, so that two
// listings of the same slots compare equal however they were cut.
func mergeRanges(rs [][2]int) [][2]int {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(x, y [2]int) int { return x[0] - y[0] })
	var out [][2]int
	for _, r := range rs {
		if n := len(out); n > 0 && r[0] <= out[n-1][1]+1 {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}
