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
	return p
}
