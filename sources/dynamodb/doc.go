// Package dynamodb is cutover's DynamoDB source.
//
//	DynamoDB table ──parallel Scan (segments, paced by read capacity)──▶ rows ─────┐
//	      │                                                                       ├─▶ events ─▶ Publisher
//	      └── DynamoDB Streams ──shards, parents before children──▶ records ──────┘
//
// The stream's position is taken before the scan starts, so no change made
// during the scan is missed. A scanned row's version is (epoch, 0), a
// stream record's (epoch, sequence number): a record always wins over a
// row. That is correct because every write after the stream position is in
// the stream — a write before the scan read a row carries the same image as
// the row, a write after it is newer — so the target ends with each item's
// latest image, and an item deleted during the scan stays deleted.
//
// Each scan segment saves its LastEvaluatedKey, and each shard its last
// sequence number, once Kafka acknowledged every event before them; a
// restart continues from there. Stream records trimmed while cutover was
// down (TrimmedDataAccessException) are a gap: it is reported loudly and
// healed by a new version epoch, a re-scan, and a truncate that sweeps the
// items deleted meanwhile.
//
// Every DynamoDB type travels losslessly (numbers as exact decimal text);
// an event's key is the item's primary key (pipeline.EncodeItemKey).
package dynamodb
