package pipeline

// The wire format of an event: Encode (encode.go) and Decode (decode.go),
// the DynamoDB JSON of items (itemjson.go) and sorted-set scores (score.go).
// docs/wire-format.md documents it.

// FormatVersion is the version of the wire format written by Encode. Decode
// reads this version and rejects others with ErrDecode.
const FormatVersion = 1

// ContentType is the value of the content-type header of every record.
const ContentType = "application/vnd.cutover.event.v1+json"
