package plan

import (
	"math"
	"testing"
	"time"
)

func TestWriteUnits(t *testing.T) {
	for _, c := range []struct{ bytes, want int64 }{
		{0, 0}, {1, 1}, {1024, 1}, {1025, 2}, {400 * 1024, 400}, {3500, 4},
	} {
		if got := WriteUnits(c.bytes); got != c.want {
			t.Errorf("WriteUnits(%d) = %d, want %d", c.bytes, got, c.want)
		}
	}
}

func TestPercentiles(t *testing.T) {
	var v []int64
	for i := int64(1); i <= 100; i++ {
		v = append(v, 101-i) // unsorted on purpose
	}
	if got, want := distribution(v), (Sizes{P50: 50, P99: 99, Max: 100}); got != want {
		t.Errorf("distribution = %+v, want %+v", got, want)
	}
	if got := distribution([]int64{7}); got != (Sizes{7, 7, 7}) {
		t.Errorf("one value: %+v", got)
	}
	if got := distribution(nil); got != (Sizes{}) {
		t.Errorf("none: %+v", got)
	}
}

func TestEstimateScalesTheSample(t *testing.T) {
	var tl Tally
	// 1,000 sampled keys: 900 strings of 100 bytes (item 1,500 bytes: two
	// write units), 90 with a TTL among them; 100 hashes of which 10 are
	// too large.
	for i := range 900 {
		tl.Add(Key{Name: "s", Type: "string", Bytes: 100, Events: 1, ItemBytes: 1500, TTL: i < 90})
	}
	for i := range 100 {
		k := Key{Name: "h", Type: "hash", Bytes: 2000, Events: 1, ItemBytes: 500}
		if i < 10 {
			k = Key{Name: "big", Type: "hash", Bytes: 500_000, Events: 1, Reason: "over 400 KB", Detail: "item of 500000 bytes"}
		}
		tl.Add(k)
	}
	e := tl.Estimate(100_000, false)
	if e.Total != 100_000 || e.Sampled != 1000 || e.Full {
		t.Fatalf("totals: %+v", e)
	}
	if e.ByType["string"] != 90_000 || e.ByType["hash"] != 10_000 {
		t.Errorf("by type: %v", e.ByType)
	}
	if e.Carried != 99_000 || e.NotCarried != 1000 {
		t.Errorf("carried %d, not carried %d", e.Carried, e.NotCarried)
	}
	if len(e.Reasons) != 1 || e.Reasons[0].Estimated != 1000 || e.Reasons[0].Example != "big" {
		t.Errorf("reasons: %+v", e.Reasons)
	}
	// 900×2 + 90×1 write units in the sample, times 100.
	if e.WriteUnits != 189_000 {
		t.Errorf("write units %d, want 189000", e.WriteUnits)
	}
	if math.Abs(e.TTLShare-0.09) > 1e-9 || e.TTLUpper95 <= 0.09 || e.TTLUpper95 > 0.12 {
		t.Errorf("ttl share %v, bound %v", e.TTLShare, e.TTLUpper95)
	}
	if e.NotCarriedShare != 0.01 || e.NotCarriedUpper95 <= 0.01 {
		t.Errorf("not-carried share %v, bound %v", e.NotCarriedShare, e.NotCarriedUpper95)
	}
	if e.Sizes.Max != 500_000 || e.Sizes.P50 != 100 {
		t.Errorf("sizes %+v", e.Sizes)
	}
	if e.ItemSizes.Max != 1500 {
		t.Errorf("item sizes %+v", e.ItemSizes)
	}
}

func TestFullScanIsExact(t *testing.T) {
	var tl Tally
	tl.Add(Key{Type: "string", Bytes: 10, Events: 1, ItemBytes: 10})
	tl.Add(Key{Type: "stream", Bytes: 10, Events: 1, Reason: "unsupported type"})
	// DBSIZE said 5 (keys expired or were added meanwhile): a full scan
	// reports what it read, and its shares are exact.
	e := tl.Estimate(5, true)
	if e.Total != 2 || e.NotCarried != 1 || e.NotCarriedUpper95 != 0.5 || e.Reasons[0].Upper95 != 0.5 {
		t.Errorf("full scan: %+v", e)
	}
}

func TestNoFailureSeenStillHasABound(t *testing.T) {
	var tl Tally
	for range 300 {
		tl.Add(Key{Type: "string", Bytes: 10, Events: 1})
	}
	e := tl.Estimate(1_000_000, false)
	// The rule of three: 3/300.
	if e.NotCarried != 0 || math.Abs(e.NotCarriedUpper95-0.01) > 1e-9 {
		t.Errorf("not carried %d, bound %v", e.NotCarried, e.NotCarriedUpper95)
	}
}

func TestProject(t *testing.T) {
	e := Estimate{Carried: 1_000_000, CarriedEvents: 1_200_000, WriteUnits: 3_000_000}
	p := Project(&e, Rates{PricePerMillionWrites: 0.625, WritesPerSecond: 1000}, false)
	if p.Writes != 1_000_000 || math.Abs(p.Cost-1.875) > 1e-9 || p.Duration != 1000*time.Second {
		t.Errorf("dynamodb projection: %+v", p)
	}
	p = Project(&e, Rates{WritesPerSecond: 1000}, true)
	if p.Writes != 1_200_000 || p.Duration != 1200*time.Second || p.Cost != 0 {
		t.Errorf("redis projection: %+v", p)
	}
	p = Project(&e, Rates{WritesPerSecond: 3}, false)
	if p.Duration != 333334*time.Second {
		t.Errorf("a started second counts: %v", p.Duration)
	}
}

func TestProvisionedAndSuggestion(t *testing.T) {
	// 36 million writes of 2 KB items: 72 million write units.
	e := Estimate{Carried: 36_000_000, CarriedEvents: 36_000_000, WriteUnits: 72_000_000}
	r := Rates{PricePerMillionWrites: 0.625, WritesPerSecond: 4000, PricePerWCUHour: 0.00065,
		FinishWithin: 2 * time.Hour, WorkerWritesPerSecond: 4000, WarmWrites: 4000}
	p := Project(&e, r, false)
	// 9,000 s at 4,000 writes/s: 8,000 WCU for 3 hours.
	if p.Duration != 9000*time.Second || p.ProvisionedWCU != 8000 || math.Abs(p.ProvisionedCost-8000*3*0.00065) > 1e-9 {
		t.Errorf("provisioned: %+v", p)
	}
	s := p.Suggest
	// 5,000 writes/s and 10,000 write units/s for two hours: two workers,
	// and a table warmer than a new one's 4,000.
	if s == nil || s.WritesPerSecond != 5000 || s.Workers != 2 || s.Partitions != 2 || s.WriteUnitsPerSecond != 10000 || s.PreWarm != 10000 {
		t.Errorf("suggestion: %+v", s)
	}
	r.WarmWrites = 20000
	if s := Project(&e, r, false).Suggest; s.PreWarm != 0 {
		t.Errorf("a warm enough table needs no pre-warming: %+v", s)
	}
	r.FinishWithin = 0
	if s := Project(&e, r, false).Suggest; s != nil {
		t.Errorf("no --finish-within, no suggestion: %+v", s)
	}
}

func TestTTLDistribution(t *testing.T) {
	var tl Tally
	for _, in := range []time.Duration{time.Minute, 2 * time.Hour, 3 * time.Hour, 48 * time.Hour, 30 * 24 * time.Hour} {
		tl.Add(Key{Type: "string", Events: 1, TTL: true, ExpiresIn: in})
	}
	tl.Add(Key{Type: "string", Events: 1})
	e := tl.Estimate(60, false)
	want := map[string]int64{"under 1h": 10, "1h to 1d": 20, "1d to 7d": 10, "7d or more": 10}
	for k, v := range want {
		if e.TTLs[k] != v {
			t.Errorf("ttl %s: %d, want %d (all: %v)", k, e.TTLs[k], v, e.TTLs)
		}
	}
}
