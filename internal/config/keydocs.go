package config

// YAMLOnlyDocs describe the keys that no flag sets (a flag's help
// describes the others, and names its key).
var YAMLOnlyDocs = map[string]string{
	"source.dynamodb.attributes.type":       "attribute holding a Redis key's type (default cutover_type)",
	"source.dynamodb.attributes.value":      "attribute holding a Redis key's value (default value)",
	"source.dynamodb.attributes.ttl":        "attribute holding a Redis key's expiry, epoch seconds (default expire_at)",
	"source.dynamodb.attributes.version":    "attribute holding the forward pipeline's version, not copied (default cutover_version)",
	"source.dynamodb.attributes.deleted":    "attribute marking a tombstone, read as the delete of its key (default cutover_deleted)",
	"kafka.sasl.password":                   "SASL password; prefer ${KAFKA_SASL_PASSWORD} in the file or the KAFKA_SASL_PASSWORD environment variable (never a flag)",
	"sink.dynamodb.rules":                   "rules mapping Redis keys to natural items of their own tables; the first rule whose match takes a key wins, keys no rule takes go to sink.dynamodb.table (or are dead-lettered)",
	"sink.dynamodb.rules[].match":           "Redis glob pattern of the keys the rule takes",
	"sink.dynamodb.rules[].table":           "table the rule's items are written to",
	"sink.dynamodb.rules[].key":             "key template: the table's key attributes as {placeholders} in the Redis key, e.g. user:{userId} or order:{userId}:{orderId}",
	"sink.dynamodb.rules[].key_types":       "type of each key attribute when cutover creates the table: S, N or B (default S)",
	"sink.dynamodb.rules[].fields":          "type of each hash field's attribute: string, number, binary or json (default string)",
	"sink.dynamodb.rules[].value_attribute": "attribute holding a Redis string's value (default value)",
	"sink.dynamodb.rules[].ttl_attribute":   "attribute holding the expiry (default sink.dynamodb.attributes.ttl)",
}
