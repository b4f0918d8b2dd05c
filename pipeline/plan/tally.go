package plan

import (
	"math"
	"slices"
	"time"

	"github.com/cutover/cutover/pipeline/reconcile"
)

// Key is what the pipeline would do with one sampled key.
type Key struct {
	// Name is the key (shown only as the example of a Reason).
	Name string
	// Type is the key's type as the source read it: string, hash, list,
	// set, zset, stream, item, or the server's name for a type cutover
	// does not carry.
	Type string
	// Bytes are what the key's events put into Kafka (record key and
	// encoded value), summed over its pieces when it travels in pieces.
	Bytes int64
	// Events is how many events carry it: 1, or its pieces.
	Events int64
	// ItemBytes is the size DynamoDB counts of the item it becomes, for a
	// DynamoDB target (0 otherwise).
	ItemBytes int64
	// MemoryBytes is what it will take in a Redis target, cutover's
	// version key included (0 for other targets).
	MemoryBytes int64
	// TTL is set when the key has an expiry; ExpiresIn is how far ahead.
	TTL       bool
	ExpiresIn time.Duration
	// Chunked is set when it travels in pieces (a big collection or
	// string).
	Chunked bool
	// Reason, when set, is why the key cannot be carried: it would be
	// dead-lettered. Detail explains it for this key.
	Reason string
	Detail string
}

// Reason is one cause of keys that cannot be carried.
type Reason struct {
	Reason string `json:"reason"`
	// Sampled is how many sampled keys have it.
	Sampled int64 `json:"sampled"`
	// Estimated is how many of all keys have it (Sampled scaled).
	Estimated int64 `json:"estimated"`
	// Share is Sampled / sampled keys; Upper95 its 95% upper bound.
	Share   float64 `json:"share"`
	Upper95 float64 `json:"upper_95"`
	// Example is one key with it, and what was wrong.
	Example       string `json:"example"`
	ExampleDetail string `json:"example_detail"`
}

// Tally accumulates the sampled keys. The zero value is ready.
type Tally struct {
	sampled, carried, ttl, chunked           int64
	events, bytes, itemBytes, memory, wunits int64
	carriedEvents                            int64
	byType                                   map[string]int64
	ttlBuckets                               [4]int64 // by TTLBuckets
	sizes, items                             []int64
	reasons                                  map[string]*Reason
	order                                    []string
}

// Add counts one key.
func (t *Tally) Add(k Key) {
	if t.byType == nil {
		t.byType, t.reasons = map[string]int64{}, map[string]*Reason{}
	}
	t.sampled++
	t.byType[k.Type]++
	t.sizes = append(t.sizes, k.Bytes)
	t.events += max(k.Events, 1)
	t.bytes += k.Bytes
	if k.TTL {
		t.ttl++
		for i, b := range TTLBuckets {
			if k.ExpiresIn < b.Below || i == len(TTLBuckets)-1 {
				t.ttlBuckets[i]++
				break
			}
		}
	}
	if k.Chunked {
		t.chunked++
	}
	if k.Reason != "" {
		r := t.reasons[k.Reason]
		if r == nil {
			r = &Reason{Reason: k.Reason, Example: k.Name, ExampleDetail: k.Detail}
			t.reasons[k.Reason] = r
			t.order = append(t.order, k.Reason)
		}
		r.Sampled++
		return
	}
	t.carried++
	t.carriedEvents += max(k.Events, 1)
	if k.ItemBytes > 0 {
		t.items = append(t.items, k.ItemBytes)
		t.itemBytes += k.ItemBytes
		t.wunits += WriteUnits(k.ItemBytes)
	}
	t.memory += k.MemoryBytes
}

// TTLBuckets are the ranges the expiries of keys are counted in.
var TTLBuckets = [4]struct {
	Name  string
	Below time.Duration // the last bucket takes the rest
}{
	{"under 1h", time.Hour}, {"1h to 1d", 24 * time.Hour}, {"1d to 7d", 7 * 24 * time.Hour}, {"7d or more", 0},
}

// WriteUnits is what one PutItem of an item of this many bytes costs:
// one write unit per started KB. A conditional put costs the same as a
// plain one (a put that fails its condition costs it too); a put over an
// existing item costs by the larger of the two, so an empty target is
// the base case.
func WriteUnits(itemBytes int64) int64 {
	if itemBytes <= 0 {
		return 0
	}
	return (itemBytes + 1023) / 1024
}

// Sizes is a size distribution in bytes.
type Sizes struct {
	P50 int64 `json:"p50"`
	P99 int64 `json:"p99"`
	Max int64 `json:"max"`
}

func distribution(v []int64) Sizes {
	if len(v) == 0 {
		return Sizes{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return Sizes{P50: percentile(s, 0.50), P99: percentile(s, 0.99), Max: s[len(s)-1]}
}

// percentile is the nearest-rank percentile of sorted s.
func percentile(s []int64, p float64) int64 {
	rank := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// Estimate is the tally scaled to the whole keyspace.
type Estimate struct {
	// Total is how many keys the source holds (DBSIZE, DynamoDB's item
	// count) — or, after a full scan, how many it read.
	Total int64 `json:"total_keys"`
	// Sampled is how many keys were read; Full is set when that is all.
	Sampled int64 `json:"sampled_keys"`
	Full    bool  `json:"full_scan"`
	// ByType counts keys by type, scaled.
	ByType map[string]int64 `json:"by_type"`
	// SampledByType is ByType before scaling.
	SampledByType map[string]int64 `json:"sampled_by_type"`
	// Sizes is the distribution of the bytes each key puts into Kafka;
	// ItemSizes that of the DynamoDB items of the carried keys.
	Sizes     Sizes `json:"event_bytes"`
	ItemSizes Sizes `json:"item_bytes"`
	// Carried keys will be copied; NotCarried will be dead-lettered, for
	// the Reasons.
	Carried    int64    `json:"carried"`
	NotCarried int64    `json:"not_carried"`
	Reasons    []Reason `json:"not_carried_reasons"`
	// NotCarriedUpper95 is the 95% upper bound on the share of keys not
	// carried (1 for a full scan is not used: the share is exact).
	NotCarriedShare   float64 `json:"not_carried_share"`
	NotCarriedUpper95 float64 `json:"not_carried_upper_95"`
	// Chunked keys travel in pieces.
	Chunked int64 `json:"chunked"`
	// TTLShare is the share of keys with an expiry, TTLUpper95 its bound.
	TTLShare   float64 `json:"ttl_share"`
	TTLUpper95 float64 `json:"ttl_upper_95"`
	// TTLs counts the keys with an expiry by how far ahead it is
	// (TTLBuckets), scaled.
	TTLs map[string]int64 `json:"ttl_distribution"`
	// Events and KafkaBytes go into the topic; ItemBytes, WriteUnits and
	// RedisMemory are what the target gets (0 when not its kind).
	Events int64 `json:"events"`
	// CarriedEvents are the events of the carried keys: the target's
	// writes.
	CarriedEvents int64 `json:"carried_events"`
	KafkaBytes    int64 `json:"kafka_bytes"`
	ItemBytes     int64 `json:"item_bytes_total"`
	WriteUnits    int64 `json:"write_units"`
	RedisMemory   int64 `json:"redis_memory_bytes"`
}

// Estimate scales the tally to total keys. A full scan (full) is exact:
// total is then what was read.
func (t *Tally) Estimate(total int64, full bool) Estimate {
	if full || total < t.sampled {
		total = t.sampled
	}
	scale := 1.0
	if t.sampled > 0 {
		scale = float64(total) / float64(t.sampled)
	}
	up := func(n int64) int64 { return int64(math.Round(float64(n) * scale)) }
	share := func(n int64) float64 {
		if t.sampled == 0 {
			return 0
		}
		return float64(n) / float64(t.sampled)
	}
	bound := func(n int64) float64 {
		if full {
			return share(n)
		}
		return reconcile.UpperBound95(t.sampled, n)
	}
	e := Estimate{
		Total: total, Sampled: t.sampled, Full: full,
		ByType: map[string]int64{}, SampledByType: map[string]int64{},
		Sizes: distribution(t.sizes), ItemSizes: distribution(t.items),
		Carried: up(t.carried), NotCarried: up(t.sampled - t.carried), Chunked: up(t.chunked),
		NotCarriedShare: share(t.sampled - t.carried), NotCarriedUpper95: bound(t.sampled - t.carried),
		TTLShare: share(t.ttl), TTLUpper95: bound(t.ttl),
		Events: up(t.events), CarriedEvents: up(t.carriedEvents), KafkaBytes: up(t.bytes), ItemBytes: up(t.itemBytes), WriteUnits: up(t.wunits),
		RedisMemory: up(t.memory),
	}
	for typ, n := range t.byType {
		e.ByType[typ] = up(n)
		e.SampledByType[typ] = n
	}
	e.TTLs = map[string]int64{}
	for i, b := range TTLBuckets {
		e.TTLs[b.Name] = up(t.ttlBuckets[i])
	}
	for _, name := range t.order {
		r := *t.reasons[name]
		r.Estimated, r.Share, r.Upper95 = up(r.Sampled), share(r.Sampled), bound(r.Sampled)
		e.Reasons = append(e.Reasons, r)
	}
	return e
}
