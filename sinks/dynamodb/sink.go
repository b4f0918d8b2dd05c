package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/internal/dynamoerr"
	"github.com/cutover/cutover/internal/retry"
	"github.com/cutover/cutover/pipeline"
)

// Options configure the sink. Attribute names default to the names in the
// Mapping documentation.
type Options struct {
	// Table is the target table.
	Table string
	// KeyAttribute is the table's partition key; default "pk".
	KeyAttribute string
	// KeyType is the partition key's type, "S" (default: keys must be
	// valid UTF-8) or "B" (any bytes); in item mode also "N".
	KeyType string
	// Items says the events are DynamoDB items (the source is a DynamoDB
	// table): KeyAttribute, SortAttribute and their types must then be
	// the source table's key schema.
	Items bool
	// SortAttribute and SortType are the sort key, in item mode; empty
	// for a table without one.
	SortAttribute, SortType string
	// Rule, when set, maps Redis keys to natural items of this table (see
	// Rule); the key attributes come from its template.
	Rule *Rule
	// TypeAttribute holds the Redis type; default "cutover_type".
	TypeAttribute string
	// ValueAttribute holds the value; default "value".
	ValueAttribute string
	// TTLAttribute holds the expiry in epoch seconds; default "expire_at".
	// Enable the table's TTL on it to have DynamoDB delete expired items
	// and old tombstones.
	TTLAttribute string
	// VersionAttribute holds the event version; default "cutover_version".
	VersionAttribute string
	// DeletedAttribute marks a tombstone; default "cutover_deleted".
	DeletedAttribute string
	// TombstoneRetention is how long a tombstone outlives its delete;
	// default 7 days, Kafka's default retention. Keep it at least as long
	// as the topic's retention, or a replay of older events could bring
	// deleted keys back once their tombstones are gone.
	TombstoneRetention time.Duration
	// CreateTable creates a missing table (on-demand capacity, TTL on
	// TTLAttribute). Without it a missing table is an error.
	CreateTable bool
	// Concurrency is the number of writes in flight; zero means 16 (the
	// CLI passes sink.dynamodb.concurrency, default 64).
	Concurrency int
	// MaxWritesPerSecond caps the write rate; 0 means no cap. Throttling
	// lowers the rate below it for as long as the table needs (see aimd).
	MaxWritesPerSecond int
	// Endpoint is only used in messages (the client carries the real one).
	Endpoint string
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.KeyAttribute, "pk")
	def(&o.KeyType, "S")
	def(&o.TypeAttribute, "cutover_type")
	def(&o.ValueAttribute, "value")
	def(&o.TTLAttribute, "expire_at")
	def(&o.VersionAttribute, "cutover_version")
	def(&o.DeletedAttribute, "cutover_deleted")
	if o.TombstoneRetention <= 0 {
		o.TombstoneRetention = 7 * 24 * time.Hour
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Stats are counters since the sink was made.
type Stats struct {
	// Writes that succeeded.
	Writes int64
	// Throttles answered by DynamoDB (each was retried).
	Throttles int64
	// Retries of any transient failure, throttles included.
	Retries int64
	// Swept items removed by truncate events.
	Swept int64
	// RateLimit is the current pace, in writes per second; 0 means none.
	RateLimit float64
}

// dynamoAPI is what the sink calls of DynamoDB: setup (DescribeTable,
// CreateTable, UpdateTimeToLive), writes (PutItem), and reconcile's reads
// and the truncate sweeps (BatchGetItem, Scan). *dynamodb.Client
// implements it; unit tests put a fake behind it to throttle writes or
// leave keys unprocessed.
type dynamoAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Sink writes events to one DynamoDB table.
type Sink struct {
	db   dynamoAPI
	opts Options
	m    Mapping
	log  *slog.Logger

	cond  string
	names map[string]string

	writes, throttles, retries, swept atomic.Int64
	pace                              *aimd
}

var _ pipeline.Sink = (*Sink)(nil)

// New returns a sink writing through db. Call Prepare before Apply.
func New(db dynamoAPI, opts Options) (*Sink, error) {
	if opts.Table == "" {
		return nil, fmt.Errorf("dynamodb sink: no table configured (set --dynamodb-table or sink.dynamodb.table)")
	}
	opts.setDefaults()
	var tmpl *pipeline.KeyTemplate
	if r := opts.Rule; r != nil {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("dynamodb sink: rule for %s: %w", r.Match, err)
		}
		tmpl, _ = pipeline.ParseKeyTemplate(r.Key)
		keyType := func(name string) string {
			if t := r.KeyTypes[name]; t != "" {
				return t
			}
			return "S"
		}
		names := tmpl.Names()
		opts.KeyAttribute, opts.KeyType = names[0], keyType(names[0])
		opts.SortAttribute, opts.SortType = "", ""
		if len(names) == 2 {
			opts.SortAttribute, opts.SortType = names[1], keyType(names[1])
		}
		if r.ValueAttribute != "" {
			opts.ValueAttribute = r.ValueAttribute
		}
	}
	if opts.KeyType != "S" && opts.KeyType != "B" && (!opts.Items && opts.Rule == nil || opts.KeyType != "N") {
		return nil, fmt.Errorf("dynamodb sink: key type %q: must be S or B", opts.KeyType)
	}
	attrs := []string{opts.KeyAttribute, opts.TTLAttribute, opts.VersionAttribute, opts.DeletedAttribute}
	if opts.SortAttribute != "" {
		attrs = append(attrs, opts.SortAttribute)
	}
	switch {
	case opts.Rule != nil:
		attrs = append(attrs, opts.ValueAttribute)
	case !opts.Items:
		attrs = append(attrs, opts.TypeAttribute, opts.ValueAttribute)
	}
	seen := map[string]bool{}
	for _, a := range attrs {
		if seen[a] {
			return nil, fmt.Errorf("dynamodb sink: attribute name %q is used for two purposes; give each attribute its own name", a)
		}
		seen[a] = true
	}
	var fields map[string]string
	if opts.Rule != nil {
		fields = opts.Rule.Fields
	}
	return &Sink{
		db:   db,
		opts: opts,
		log:  opts.Logger,
		m: Mapping{
			KeyAttribute: opts.KeyAttribute, KeyType: types.ScalarAttributeType(opts.KeyType),
			SortAttribute: opts.SortAttribute, SortType: types.ScalarAttributeType(opts.SortType), Items: opts.Items,
			TypeAttribute: opts.TypeAttribute, ValueAttribute: opts.ValueAttribute, TTLAttribute: opts.TTLAttribute,
			VersionAttribute: opts.VersionAttribute, DeletedAttribute: opts.DeletedAttribute,
			TombstoneRetention: opts.TombstoneRetention, Template: tmpl, Fields: fields,
		},
		pace:  newAIMD(opts.MaxWritesPerSecond),
		cond:  "attribute_not_exists(#v) OR #v < :v",
		names: map[string]string{"#v": opts.VersionAttribute},
	}, nil
}

// Mapping is how the sink maps events to items.
func (s *Sink) Mapping() *Mapping { return &s.m }

// Stats returns the counters so far.
func (s *Sink) Stats() Stats {
	return Stats{Writes: s.writes.Load(), Throttles: s.throttles.Load(), Retries: s.retries.Load(), Swept: s.swept.Load(),
		RateLimit: s.pace.limit()}
}

// Throttled reports whether DynamoDB throttled a write in the last two
// seconds; the worker pauses fetching from Kafka meanwhile.
func (s *Sink) Throttled() bool {
	return s.pace.throttled(time.Now())
}

// Prepare checks that the table exists with the expected key, creating it
// when CreateTable is set.
func (s *Sink) Prepare(ctx context.Context) error {
	out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.opts.Table)})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		if !s.opts.CreateTable {
			return fmt.Errorf("dynamodb table %s does not exist (create it with %s, or pass --create-table)",
				s.opts.Table, s.keyDesc())
		}
		return s.createTable(ctx)
	case err != nil:
		return fmt.Errorf("describe table %s: %w", s.opts.Table, explain(s.opts.Endpoint, err))
	}
	if s.opts.Rule != nil {
		s.adoptSchema(out.Table)
	}
	return s.checkSchema(out.Table)
}

// adoptSchema takes an existing table's key types, and which of the
// template's attributes is the partition key, when the table's key
// attributes are the template's: a rule only names them.
func (s *Sink) adoptSchema(t *types.TableDescription) {
	hash, rng := keySchema(t)
	names := s.m.Template.Names()
	if !slices.Contains(names, hash) || (rng != "") != (len(names) == 2) || (rng != "" && !slices.Contains(names, rng)) {
		return // checkSchema says what is wrong
	}
	kinds := map[string]types.ScalarAttributeType{}
	for _, d := range t.AttributeDefinitions {
		kinds[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	s.opts.KeyAttribute, s.opts.KeyType = hash, string(kinds[hash])
	s.opts.SortAttribute, s.opts.SortType = rng, string(kinds[rng])
	s.m.KeyAttribute, s.m.KeyType = hash, kinds[hash]
	s.m.SortAttribute, s.m.SortType = rng, kinds[rng]
}

// keySchema is a table's partition and sort key attributes (rng empty
// without a sort key).
func keySchema(t *types.TableDescription) (hash, rng string) {
	for _, k := range t.KeySchema {
		switch k.KeyType {
		case types.KeyTypeHash:
			hash = aws.ToString(k.AttributeName)
		case types.KeyTypeRange:
			rng = aws.ToString(k.AttributeName)
		}
	}
	return hash, rng
}

// keyDesc describes the key schema the sink writes.
func (s *Sink) keyDesc() string {
	d := fmt.Sprintf("partition key %s of type %s", s.opts.KeyAttribute, s.opts.KeyType)
	if s.opts.SortAttribute != "" {
		return d + fmt.Sprintf(" and sort key %s of type %s", s.opts.SortAttribute, s.opts.SortType)
	}
	return d + " and no sort key"
}

func (s *Sink) checkSchema(t *types.TableDescription) error {
	hash, rng := keySchema(t)
	var hashType, rngType types.ScalarAttributeType
	for _, d := range t.AttributeDefinitions {
		switch aws.ToString(d.AttributeName) {
		case hash:
			hashType = d.AttributeType
		case rng:
			rngType = d.AttributeType
		}
	}
	if hash == s.opts.KeyAttribute && string(hashType) == s.opts.KeyType && rng == s.opts.SortAttribute && string(rngType) == s.opts.SortType {
		return nil
	}
	desc := fmt.Sprintf("partition key %s of type %s", hash, hashType)
	if rng != "" {
		desc += fmt.Sprintf(" and sort key %s of type %s", rng, rngType)
	}
	fix := "set --key-attribute/--key-type to match, or use another table"
	if s.opts.Rule != nil {
		fix = fmt.Sprintf("the rule's key template %s must name the table's key attributes", s.opts.Rule.Key)
	}
	if s.opts.Items {
		fix = "the target table needs the source table's key schema: use another table, or let --create-table make one"
	}
	return fmt.Errorf("dynamodb table %s has %s, but the sink writes %s (%s)", s.opts.Table, desc, s.keyDesc(), fix)
}

func (s *Sink) createTable(ctx context.Context) error {
	defs := []types.AttributeDefinition{{
		AttributeName: aws.String(s.opts.KeyAttribute), AttributeType: types.ScalarAttributeType(s.opts.KeyType),
	}}
	schema := []types.KeySchemaElement{{AttributeName: aws.String(s.opts.KeyAttribute), KeyType: types.KeyTypeHash}}
	if s.opts.SortAttribute != "" {
		defs = append(defs, types.AttributeDefinition{AttributeName: aws.String(s.opts.SortAttribute), AttributeType: types.ScalarAttributeType(s.opts.SortType)})
		schema = append(schema, types.KeySchemaElement{AttributeName: aws.String(s.opts.SortAttribute), KeyType: types.KeyTypeRange})
	}
	_, err := s.db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(s.opts.Table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: defs,
		KeySchema:            schema,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", s.opts.Table, explain(s.opts.Endpoint, err))
	}
	if err := dynamodb.NewTableExistsWaiter(s.db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.opts.Table)}, 5*time.Minute); err != nil {
		return fmt.Errorf("wait for table %s to become active: %w", s.opts.Table, explain(s.opts.Endpoint, err))
	}
	_, err = s.db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(s.opts.Table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(s.opts.TTLAttribute), Enabled: aws.Bool(true)},
	})
	if err != nil {
		// Items still carry their expiry; only DynamoDB's own purge of
		// expired items and old tombstones is missing.
		s.log.Warn("could not enable TTL on the new table; expired items and tombstones will not be purged by DynamoDB",
			"table", s.opts.Table, "attribute", s.opts.TTLAttribute, "err", err)
	}
	s.log.Info("created table", "table", s.opts.Table, "key", s.keyDesc(), "ttl_attribute", s.opts.TTLAttribute)
	return nil
}

// Apply implements pipeline.Sink: it writes the newest event of each
// key of the batch with a conditional PutItem, concurrently.
func (s *Sink) Apply(ctx context.Context, events []pipeline.Event) ([]pipeline.Result, error) {
	results := make([]pipeline.Result, len(events))
	if len(events) == 1 && events[0].Op == pipeline.OpTruncate {
		n, err := s.sweep(ctx, &events[0])
		if err != nil {
			return nil, err
		}
		s.log.Info("truncate applied", "partition", events[0].Scope.Partition, "swept", n)
		// A truncate that found nothing older changed nothing: counted as
		// skipped, so that a replay that only repeats what the target holds
		// reports no event applied.
		results[0] = pipeline.Result{Outcome: pipeline.Applied}
		if n == 0 {
			results[0].Outcome = pipeline.SkippedOlder
		}
		return results, nil
	}
	newest := make(map[string]int, len(events))
	order := make([]int, 0, len(events))
	for i := range events {
		if events[i].Chunk != nil {
			results[i] = pipeline.Result{Outcome: pipeline.Rejected, Err: fmt.Errorf(
				"%w: key %q is so large the source read it in pieces; a DynamoDB item holds at most 400 KB (exclude the key)",
				pipeline.ErrUnmappable, events[i].Key)}
			continue
		}
		k := string(events[i].Key)
		j, ok := newest[k]
		switch {
		case !ok:
			newest[k] = i
			order = append(order, i)
		case events[i].Version.Compare(events[j].Version) >= 0:
			// A later record of the same version is the same read
			// published twice; the later one stands for both.
			results[j] = pipeline.Result{Outcome: pipeline.SkippedOlder}
			newest[k] = i
			order = append(order, i)
		default:
			results[i] = pipeline.Result{Outcome: pipeline.SkippedOlder}
		}
	}
	now := time.Now()
	if len(order) == 1 {
		// The worker's usual call (one event): written in the caller's
		// goroutine, whose stack has already grown to the SDK's depth,
		// rather than in a new one that grows its stack on every write.
		i := order[0]
		res, err := s.write(ctx, &events[i], now)
		if err != nil {
			return nil, err
		}
		results[i] = res
		return results, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.Concurrency)
	for _, i := range order {
		if newest[string(events[i].Key)] != i {
			continue // superseded within the batch
		}
		g.Go(func() error {
			res, err := s.write(gctx, &events[i], now)
			results[i] = res
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// write puts one event's item, retrying transient failures until they
// pass or ctx ends.
func (s *Sink) write(ctx context.Context, e *pipeline.Event, now time.Time) (pipeline.Result, error) {
	if e.Op == pipeline.OpUpsert && !e.ExpireAt.IsZero() && !e.ExpireAt.After(now) {
		// Its expiry has passed: the key is gone, and the write is a
		// tombstone at the event's version. Written as a value, it would
		// be read back until DynamoDB's TTL purged it (reads return
		// expired items), and once purged it would leave no version
		// behind to refuse an older event of the key on a replay.
		gone := *e
		gone.Op, gone.Value, gone.ExpireAt = pipeline.OpDelete, pipeline.Value{}, time.Time{}
		e = &gone
	}
	item, err := s.m.Item(e, now)
	if err != nil {
		return pipeline.Result{Outcome: pipeline.Rejected, Err: err}, nil
	}
	in := &dynamodb.PutItemInput{
		TableName:                 aws.String(s.opts.Table),
		Item:                      item,
		ConditionExpression:       aws.String(s.cond),
		ExpressionAttributeNames:  s.names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberB{Value: e.Version}},
	}
	// Never give up (no MaxElapsedTime): a sink must not skip a record.
	var res pipeline.Result
	err = retry.Forever(ctx, func() error {
		if err := s.pace.wait(ctx); err != nil {
			return retry.Permanent(err)
		}
		_, err := s.db.PutItem(ctx, in, func(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} })
		if err == nil {
			s.pace.success(time.Now())
			s.writes.Add(1)
			res = pipeline.Result{Outcome: pipeline.Applied}
			return nil
		}
		switch dynamoerr.Classify(err) {
		case dynamoerr.ConditionFailed: // the table holds this version or a newer one
			res = pipeline.Result{Outcome: pipeline.SkippedOlder}
			return nil
		case dynamoerr.Invalid: // this item can never be written as it is: dead-lettered
			res = pipeline.Result{Outcome: pipeline.Rejected, Err: fmt.Errorf("table %s rejected the item of key %q: %w", s.opts.Table, e.Key, err)}
			return nil
		case dynamoerr.Denied, dynamoerr.Missing, dynamoerr.Stopped: // nothing is written until someone acts: stop the worker
			return retry.Permanent(fmt.Errorf("write key %q: %w", e.Key, explain(s.opts.Endpoint, err)))
		case dynamoerr.Throttled:
			s.throttles.Add(1)
			s.pace.throttle(time.Now())
		case dynamoerr.Transient:
		}
		s.retries.Add(1)
		return err
	}, func(err error, wait time.Duration) {
		s.log.Debug("dynamodb write failed, retrying", "key", string(e.Key), "err", err, "retry_in", wait)
	}, retry.Initial(50*time.Millisecond), retry.Max(10*time.Second))
	return res, err
}

// Expect implements reconcile.Expecter: in rule mode the target holds the
// hash as an item, which Lookup returns.
func (s *Sink) Expect(e *pipeline.Event) (pipeline.Value, error) { return s.m.Expect(e) }
