package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/cutover/cutover/internal/awsconn"
	"github.com/cutover/cutover/internal/config"
	ddbsink "github.com/cutover/cutover/sinks/dynamodb"
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
)

// newDynamoDBSink connects the sink and checks (or creates) its tables:
// one per rule, and the default table. items is the source table when the
// source is DynamoDB: the target then gets its key schema and TTL
// attribute.
func newDynamoDBSink(ctx context.Context, cfg *config.Config, items *ddbsrc.Table, log *slog.Logger) (*ddbsink.Router, error) {
	router, err := newDynamoDBRouter(ctx, cfg, items, log)
	if err != nil {
		return nil, err
	}
	prepCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := router.Prepare(prepCtx); err != nil {
		return nil, err
	}
	return router, nil
}

// newDynamoDBRouter builds the sink's tables without touching them
// (`cutover plan` checks them read-only, with Router.Check).
func newDynamoDBRouter(ctx context.Context, cfg *config.Config, items *ddbsrc.Table, log *slog.Logger) (*ddbsink.Router, error) {
	d := cfg.Sink.DynamoDB
	client, err := awsconn.DynamoDB(ctx, d.Region, d.Endpoint, d.RoleARN, log)
	if err != nil {
		return nil, err
	}
	var routes []ddbsink.Route
	for _, r := range d.Rules {
		opts := ddbOptions(d, log)
		opts.Table = r.Table
		if r.TTLAttribute != "" {
			opts.TTLAttribute = r.TTLAttribute
		}
		opts.Rule = &ddbsink.Rule{Match: r.Match, Key: r.Key, KeyTypes: r.KeyTypes, Fields: r.Fields, ValueAttribute: r.ValueAttribute}
		s, err := ddbsink.New(client, opts)
		if err != nil {
			return nil, err
		}
		routes = append(routes, ddbsink.Route{Match: r.Match, Sink: s})
	}
	var fallback *ddbsink.Sink
	if d.Table != "" {
		opts := ddbOptions(d, log)
		if items != nil {
			opts.Items = true
			opts.KeyAttribute, opts.KeyType = items.Partition, items.PartitionType
			opts.SortAttribute, opts.SortType = items.Sort, items.SortType
			if items.TTLAttribute != "" {
				opts.TTLAttribute = items.TTLAttribute
			}
		}
		if fallback, err = ddbsink.New(client, opts); err != nil {
			return nil, err
		}
	}
	return ddbsink.NewRouter(routes, fallback), nil
}

func ddbOptions(d config.DynamoDBSinkConfig, log *slog.Logger) ddbsink.Options {
	return ddbsink.Options{
		Table: d.Table, KeyAttribute: d.KeyAttribute, KeyType: d.KeyType, CreateTable: d.CreateTable,
		TypeAttribute: d.Attributes.Type, ValueAttribute: d.Attributes.Value, TTLAttribute: d.Attributes.TTL,
		VersionAttribute: d.Attributes.Version, DeletedAttribute: d.Attributes.Deleted,
		Concurrency: d.Concurrency, MaxWritesPerSecond: d.MaxWritesPerSecond,
		TombstoneRetention: d.TombstoneRetention, Endpoint: d.Endpoint, Logger: log,
	}
}
