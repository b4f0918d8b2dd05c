package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/pipeline"
)

// TableCheck is what Check found about one table of the target.
type TableCheck struct {
	Table string
	// Create is set when the table is missing and CreateTable would make
	// it (on-demand, TTL on the TTL attribute).
	Create bool
	// Key is the key schema the sink writes, for messages.
	Key string
	// WarmWrites is the write units a second the table takes at once
	// (its warm throughput; NewTableWarmWrites for a table to create), 0
	// when DynamoDB does not say (DynamoDB Local).
	WarmWrites int64
	// Err says what is wrong and how to fix it; nil when the table is
	// usable (or would be created).
	Err error
}

// Check is Prepare without changing anything, for `cutover plan`: it
// reads the table's description and reports whether it has the key the
// sink writes, or is missing and would be created.
func (s *Sink) Check(ctx context.Context) TableCheck {
	c := TableCheck{Table: s.opts.Table, Key: s.keyDesc()}
	out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.opts.Table)})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		if s.opts.CreateTable {
			c.Create, c.WarmWrites = true, NewTableWarmWrites
			return c
		}
		c.Err = fmt.Errorf("dynamodb table %s does not exist (create it with %s, or pass --create-table)", s.opts.Table, s.keyDesc())
		return c
	case err != nil:
		c.Err = fmt.Errorf("describe table %s: %w", s.opts.Table, explain(s.opts.Endpoint, err))
		return c
	}
	if s.opts.Rule != nil {
		s.adoptSchema(out.Table)
	}
	c.Key = s.keyDesc()
	c.Err = s.checkSchema(out.Table)
	if w := out.Table.WarmThroughput; w != nil {
		c.WarmWrites = aws.ToInt64(w.WriteUnitsPerSecond)
	}
	return c
}

// NewTableWarmWrites is the write units a second a new on-demand table
// takes at once, as AWS documents it; faster writes are throttled while
// DynamoDB scales the table out, unless it is pre-warmed.
const NewTableWarmWrites = 4000

// Check checks every table of the target; see Sink.Check.
func (r *Router) Check(ctx context.Context) []TableCheck {
	var out []TableCheck
	for _, s := range r.Sinks() {
		out = append(out, s.Check(ctx))
	}
	return out
}

// Item is the item the target would write for e, and its size as
// DynamoDB counts it: what `cutover plan` measures. An event the target
// cannot write returns an error wrapping pipeline.ErrUnmappable, as Apply
// would reject it; a piece of a big key is one of them.
func (r *Router) Item(e *pipeline.Event, now time.Time) (map[string]types.AttributeValue, error) {
	s := r.route(e.Key)
	if s == nil {
		return nil, fmt.Errorf("%w: key %q matches no rule of the DynamoDB sink and there is no default table", pipeline.ErrUnmappable, e.Key)
	}
	if e.Chunk != nil {
		return nil, fmt.Errorf("%w: key %q is read in pieces; a DynamoDB item holds at most 400 KB", pipeline.ErrUnmappable, e.Key)
	}
	return s.m.Item(e, now)
}

// Preflight is Check as the steps of `cutover plan`, with the fewest
// write units a second any of the target's tables takes at once (0 when
// DynamoDB does not say): what the time a copy takes is planned against.
func (r *Router) Preflight(ctx context.Context) (checks []pipeline.Check, warmWrites int64) {
	for _, c := range r.Check(ctx) {
		name := "target table " + c.Table
		if c.WarmWrites > 0 && (warmWrites == 0 || c.WarmWrites < warmWrites) {
			warmWrites = c.WarmWrites
		}
		switch {
		case c.Err != nil:
			checks = append(checks, pipeline.Failed(name, c.Err))
		case c.Create:
			checks = append(checks, pipeline.Passed(name, "does not exist: created on the first run (create_table), on-demand, with "+c.Key))
		default:
			checks = append(checks, pipeline.Passed(name, "exists with "+c.Key))
		}
	}
	return checks, warmWrites
}
