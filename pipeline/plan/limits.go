package plan

import "fmt"

// Limits are what the estimates cannot know, for the report to state:
// for a DynamoDB target (dynamoDBTarget) or a Redis one, for a sample
// that applied key filters (filtered), and for a sample of part of the
// keyspace (not whole). The flags they name are `cutover plan`'s.
func Limits(dynamoDBTarget, filtered, whole bool) []string {
	l := []string{
		"sizes in Kafka are of the encoded events before compression; the topic holds them for its retention.ms",
		"the duration counts target writes at the given rate only: a table's throughput, throttling and the source's pace can make it longer",
	}
	if dynamoDBTarget {
		l = append(l, "write units are for an empty table; a put over an existing item costs by the larger of the two items",
			"the cost is of the backfill's writes only: later changes, reads, storage and the target table's indexes are not counted")
	} else {
		l = append(l, "Redis memory is MEMORY USAGE of the source's keys (estimated by Redis from a few elements of a big collection), "+
			"or for a DynamoDB source the key and value the sink renders in a small key's compact encoding, "+
			fmt.Sprintf("plus about %d bytes and the key's length for its version, and %d bytes per version bucket; ", VersionKeyBytes, VersionBucketBytes)+
			"allocator overhead and big collections' encodings can add to it")
	}
	if filtered && !whole {
		l = append(l, "with filters, --sample is a share of all keys: fewer of them pass the filters and are read")
	}
	if !whole {
		l = append(l, "counts are scaled from the sample to the store's own count of keys (DBSIZE; a DynamoDB table's ItemCount is updated about every six hours); shares carry a 95% upper bound; --full gives exact counts")
	}
	return l
}
