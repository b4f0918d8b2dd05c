package plan

import (
	"math"
	"time"
)

// DefaultPricePerMillionWrites is the on-demand price of one million
// DynamoDB write request units, in US dollars: us-east-1 (N. Virginia),
// standard table class, as AWS lists it since the on-demand price cut of
// 1 November 2024. It is a default, never fetched: give your region's
// price (or a provisioned equivalent) with --price-per-million-writes.
const DefaultPricePerMillionWrites = 0.625

// DefaultPricePerWCUHour is the price of one provisioned write capacity
// unit for an hour, in US dollars: us-east-1, standard table class, as
// AWS lists it (never fetched; give yours with --price-per-wcu-hour).
const DefaultPricePerWCUHour = 0.00065

// DefaultWritesPerSecond is the write rate the duration is projected at
// when neither --writes-per-second nor sink.dynamodb.max_writes_per_second
// says: about what one sink worker of default concurrency (64 writes in
// flight) sustains against DynamoDB at ~15 ms a write.
const DefaultWritesPerSecond = 4000

// Rates are what the projection is priced and timed at.
type Rates struct {
	// PricePerMillionWrites is the cost of a million write units.
	PricePerMillionWrites float64
	// WritesPerSecond is the target's write rate (items or keys a
	// second).
	WritesPerSecond float64
	// PricePerWCUHour prices provisioned capacity for the run.
	PricePerWCUHour float64
	// FinishWithin, when set, asks for the workers, partitions and write
	// rate that finish in that time, at WorkerWritesPerSecond a worker.
	FinishWithin          time.Duration
	WorkerWritesPerSecond float64
	// WarmWrites is the DynamoDB table's warm write throughput (write
	// units a second it takes at once); 0 when unknown.
	WarmWrites int64
}

// Suggestion is what finishing within Rates.FinishWithin takes.
type Suggestion struct {
	FinishWithin    time.Duration `json:"finish_within_ns"`
	WritesPerSecond float64       `json:"writes_per_second"`
	// Workers is how many sink workers (replicate or sink processes)
	// apply that, Partitions the fewest partitions that feed them all.
	Workers    int64 `json:"sink_workers"`
	Partitions int64 `json:"partitions"`
	// WriteUnitsPerSecond is the DynamoDB throughput it takes; PreWarm,
	// when set, is the warm throughput to give the table first.
	WriteUnitsPerSecond int64 `json:"write_units_per_second"`
	PreWarm             int64 `json:"pre_warm_write_units_per_second,omitempty"`
}

// Projection is what the estimate costs and takes.
type Projection struct {
	// Writes is how many target writes the carried keys take (one per
	// key; a Redis target's pieces are one write each).
	Writes int64 `json:"writes"`
	// WriteUnits and Cost are for a DynamoDB target (0 otherwise).
	WriteUnits            int64   `json:"write_units"`
	PricePerMillionWrites float64 `json:"price_per_million_writes"`
	Cost                  float64 `json:"cost_usd"`
	// WritesPerSecond and Duration: the time the writes take at that rate.
	WritesPerSecond float64       `json:"writes_per_second"`
	Duration        time.Duration `json:"duration_ns"`
	DurationText    string        `json:"duration"`
	// ProvisionedWCU is the write capacity that writes the units in
	// Duration; ProvisionedCost is that capacity for the whole hours it
	// takes, at PricePerWCUHour (DynamoDB target only).
	ProvisionedWCU  int64   `json:"provisioned_wcu"`
	PricePerWCUHour float64 `json:"price_per_wcu_hour"`
	ProvisionedCost float64 `json:"provisioned_cost_usd"`
	// Suggest is set with Rates.FinishWithin.
	Suggest *Suggestion `json:"suggest,omitempty"`
}

// Project prices and times e. chunkedWrites says whether a key's pieces
// are separate writes (a Redis target) or the key is one write.
func Project(e *Estimate, r Rates, chunkedWrites bool) Projection {
	p := Projection{Writes: e.Carried, WriteUnits: e.WriteUnits, PricePerMillionWrites: r.PricePerMillionWrites,
		WritesPerSecond: r.WritesPerSecond}
	if chunkedWrites {
		// Every piece of a carried key is a write of its own.
		p.Writes = e.CarriedEvents
	}
	p.Cost = float64(p.WriteUnits) / 1e6 * r.PricePerMillionWrites
	if r.WritesPerSecond > 0 {
		p.Duration = time.Duration(math.Ceil(float64(p.Writes)/r.WritesPerSecond)) * time.Second
	}
	p.DurationText = p.Duration.String()
	if p.WriteUnits > 0 && p.Duration > 0 {
		p.PricePerWCUHour = r.PricePerWCUHour
		p.ProvisionedWCU = ceilDiv(float64(p.WriteUnits), p.Duration.Seconds())
		p.ProvisionedCost = float64(p.ProvisionedWCU) * math.Ceil(p.Duration.Hours()) * r.PricePerWCUHour
	}
	if r.FinishWithin > 0 {
		p.Suggest = suggest(&p, r)
	}
	return p
}

// suggest sizes the run to finish within r.FinishWithin.
func suggest(p *Projection, r Rates) *Suggestion {
	secs := r.FinishWithin.Seconds()
	s := &Suggestion{FinishWithin: r.FinishWithin, WritesPerSecond: math.Ceil(float64(p.Writes) / secs)}
	s.Workers = max(1, ceilDiv(s.WritesPerSecond, r.WorkerWritesPerSecond))
	s.Partitions = s.Workers
	if p.WriteUnits > 0 {
		s.WriteUnitsPerSecond = ceilDiv(float64(p.WriteUnits), secs)
		if r.WarmWrites > 0 && s.WriteUnitsPerSecond > r.WarmWrites {
			s.PreWarm = s.WriteUnitsPerSecond
		}
	}
	return s
}

func ceilDiv(a, b float64) int64 {
	if b <= 0 {
		return 0
	}
	return int64(math.Ceil(a / b))
}
