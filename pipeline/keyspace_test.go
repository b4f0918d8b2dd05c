package pipeline

import (
	"fmt"
	"testing"
)

func TestMatchAndFilter(t *testing.T) {
	cases := []struct {
		pattern, key string
		want         bool
	}{
		{"*", "", true}, {"user:*", "user:1", true}, {"user:*", "usr:1", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"h[ae]llo", "hallo", true}, {"h[^e]llo", "hello", false},
		{"h[a-c]llo", "hbllo", true}, {"h[c-a]llo", "hbllo", true}, {"\\*", "*", true}, {"\\*", "a", false},
		{"*:*:x", "a:b:c:x", true}, {"a*b*c", "aXbYbZc", true}, {"a*b*c", "aXbYbZ", false},
		{"\xff*", "\xff\x00", true},
	}
	for _, c := range cases {
		if got := Match(c.pattern, c.key); got != c.want {
			t.Errorf("Match(%q, %q) = %v", c.pattern, c.key, got)
		}
	}
	f := KeyFilter{Include: []string{"user:*", "order:*"}, Exclude: []string{"*:tmp"}}
	for key, want := range map[string]bool{"user:1": true, "order:2": true, "user:tmp": false, "session:1": false} {
		if f.Keep(key) != want {
			t.Errorf("Keep(%q) = %v", key, !want)
		}
	}
	// The empty key (Redis accepts SET "" v) passes an empty filter and
	// "*", as SCAN MATCH * returns it, and no pattern that needs a byte.
	if !(KeyFilter{}).Keep("") || !(KeyFilter{Include: []string{"*"}}).Keep("") || f.Keep("") {
		t.Error("the empty key is filtered unlike Redis filters it")
	}
	if (KeyFilter{Include: []string{"a*"}}).ScanMatch() != "a*" || f.ScanMatch() != "" {
		t.Error("scanMatch should push a single include pattern to the server, and only then")
	}
}

// Known values: Redis' own CLUSTER KEYSLOT answers.
func TestSlotsAndPartitions(t *testing.T) {
	for key, slot := range map[string]int{"foo": 12182, "bar": 5061, "{user1000}.following": 3443, "{user1000}.followers": 3443,
		"foo{}{bar}": 8363, "foo{{bar}}zap": 4015, "foo{bar}{zap}": 5061, "": 0} {
		if got := RedisSlot([]byte(key)); got != slot {
			t.Errorf("RedisSlot(%q) = %d, want %d", key, got, slot)
		}
	}
	// PartitionOf is checked against franz-go's (Kafka-compatible)
	// partitioner in pipeline/kafka.
	seen := map[int32]bool{}
	for i := range 1000 {
		p := PartitionOf([]byte(fmt.Sprint("key", i)), 12)
		if p < 0 || p >= 12 {
			t.Fatalf("partition %d out of range", p)
		}
		seen[p] = true
	}
	if len(seen) != 12 {
		t.Fatalf("1000 keys reached only %d of 12 partitions", len(seen))
	}
}
