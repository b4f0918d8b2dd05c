package pipeline

import (
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"
)

// Encode appends the wire form of e (one JSON object, format version 1) to
// dst. The format is documented in docs/wire-format.md; in short, a
// Debezium-style envelope where every Redis byte string is base64:
//
//	{"v":1,"op":"r","key":"dXNlcjox","version":"…hex…","origin":"snapshot",
//	 "after":{"type":"hash","expire_at_ms":1767225600000,"hash":[["bmFtZQ==","YWRh"]]},
//	 "source":{"connector":"redis","name":"demo","db":0,"node":"127.0.0.1:6379","pos":"MTI=","ts_ms":1767225599000}}
//
// Encode validates e first and returns an ErrInvalidEvent error rather than
// write something Decode would reject.
func Encode(dst []byte, e *Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return dst, err
	}
	dst = append(dst, `{"v":1,"op":"`...)
	dst = append(dst, opCode(e)...)
	dst = append(dst, '"')
	if e.Op != OpTruncate {
		dst = append(dst, `,"key":`...)
		dst = appendBase64(dst, e.Key)
	}
	dst = append(dst, `,"version":"`...)
	dst = appendHex(dst, e.Version)
	dst = append(dst, `","origin":"`...)
	dst = append(dst, e.Origin.String()...)
	dst = append(dst, '"')
	switch e.Op {
	case OpUpsert:
		dst = append(dst, `,"after":`...)
		dst = appendValue(dst, &e.Value, e.ExpireAt, e.Chunk)
	case OpTruncate:
		dst = append(dst, `,"scope":`...)
		dst = appendScope(dst, e.Scope)
	default:
	}
	dst = append(dst, `,"source":`...)
	dst = appendSource(dst, &e.Source)
	return append(dst, '}'), nil
}

// opCode follows Debezium: r for a snapshot read, u for a change, d for a
// delete, t for a truncate. cutover does not know whether a Redis write
// created the key, so it never writes c; Decode accepts c as an upsert for
// other producers.
func opCode(e *Event) string {
	switch {
	case e.Op == OpDelete:
		return "d"
	case e.Op == OpTruncate:
		return "t"
	case e.Origin == OriginSnapshot:
		return "r"
	default:
		return "u"
	}
}

func appendValue(dst []byte, v *Value, expireAt time.Time, c *Chunk) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, v.Type.String()...)
	dst = append(dst, '"')
	if !expireAt.IsZero() {
		dst = append(dst, `,"expire_at_ms":`...)
		dst = strconv.AppendInt(dst, expireAt.UnixMilli(), 10)
	}
	if c != nil {
		dst = append(dst, `,"chunk":{"index":`...)
		dst = strconv.AppendInt(dst, int64(c.Index), 10)
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendInt(dst, c.Offset, 10)
		dst = append(dst, `,"last":`...)
		dst = strconv.AppendBool(dst, c.Last)
		dst = append(dst, '}')
	}
	switch v.Type {
	case TypeString:
		dst = append(dst, `,"string":`...)
		dst = appendBase64(dst, v.String)
	case TypeHash:
		dst = append(dst, `,"hash":`...)
		dst = appendFields(dst, v.Hash)
	case TypeList:
		dst = append(dst, `,"list":`...)
		dst = appendBase64List(dst, v.List)
	case TypeSet:
		dst = append(dst, `,"set":`...)
		dst = appendBase64List(dst, v.Set)
	case TypeZSet:
		dst = append(dst, `,"zset":[`...)
		for i, m := range v.ZSet {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '[')
			dst = appendBase64(dst, m.Member)
			dst = append(dst, `,"`...)
			dst = AppendScore(dst, m.Score)
			dst = append(dst, `"]`...)
		}
		dst = append(dst, ']')
	case TypeItem:
		dst = append(dst, `,"item":`...)
		dst = appendAttrMap(dst, v.Item)
	case TypeStream:
		dst = append(dst, `,"stream":`...)
		dst = appendStream(dst, v.Stream)
	default: // TypeNone: Validate has rejected it already
	}
	return append(dst, '}')
}

// appendFields writes [[b64 name, b64 value], …].
func appendFields(dst []byte, fields []Field) []byte {
	dst = append(dst, '[')
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = appendBase64(dst, f.Name)
		dst = append(dst, ',')
		dst = appendBase64(dst, f.Value)
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

// appendStream writes a stream as
// {"entries":[{"id":"1-0","fields":[[b64,b64],…]},…],"last_id":"…",
// "max_deleted_id":"…","entries_added":N,"groups":[{"name":b64,
// "last_delivered_id":"…","entries_read":N},…]}.
func appendStream(dst []byte, st *Stream) []byte {
	dst = append(dst, `{"entries":[`...)
	for i, e := range st.Entries {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":`...)
		dst = appendString(dst, e.ID)
		dst = append(dst, `,"fields":`...)
		dst = appendFields(dst, e.Fields)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"last_id":`...)
	dst = appendString(dst, st.LastID)
	dst = append(dst, `,"max_deleted_id":`...)
	dst = appendString(dst, st.MaxDeletedID)
	dst = append(dst, `,"entries_added":`...)
	dst = strconv.AppendInt(dst, st.EntriesAdded, 10)
	dst = append(dst, `,"groups":[`...)
	for i, g := range st.Groups {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst = appendBase64(dst, g.Name)
		dst = append(dst, `,"last_delivered_id":`...)
		dst = appendString(dst, g.LastDeliveredID)
		dst = append(dst, `,"entries_read":`...)
		dst = strconv.AppendInt(dst, g.EntriesRead, 10)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

func appendScope(dst []byte, s *Scope) []byte {
	dst = append(dst, `{"partition":`...)
	dst = strconv.AppendInt(dst, int64(s.Partition), 10)
	dst = append(dst, `,"partitions":`...)
	dst = strconv.AppendInt(dst, int64(s.Partitions), 10)
	for _, f := range []struct {
		name string
		pats []string
	}{{"include", s.Filter.Include}, {"exclude", s.Filter.Exclude}} {
		if len(f.pats) == 0 {
			continue
		}
		dst = append(dst, `,"`...)
		dst = append(dst, f.name...)
		dst = append(dst, `":[`...)
		for i, p := range f.pats {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, p)
		}
		dst = append(dst, ']')
	}
	if len(s.Slots) > 0 {
		dst = append(dst, `,"slots":[`...)
		for i, r := range s.Slots {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '[')
			dst = strconv.AppendInt(dst, int64(r[0]), 10)
			dst = append(dst, ',')
			dst = strconv.AppendInt(dst, int64(r[1]), 10)
			dst = append(dst, ']')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

func appendSource(dst []byte, s *SourceInfo) []byte {
	dst = append(dst, `{"connector":`...)
	dst = appendString(dst, s.Connector)
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, s.Name)
	if s.Connector == "redis" || s.DB != 0 {
		dst = append(dst, `,"db":`...)
		dst = strconv.AppendInt(dst, int64(s.DB), 10)
	}
	if s.Table != "" {
		dst = append(dst, `,"table":`...)
		dst = appendString(dst, s.Table)
	}
	if s.Node != "" {
		dst = append(dst, `,"node":`...)
		dst = appendString(dst, s.Node)
	}
	if len(s.Position) > 0 {
		dst = append(dst, `,"pos":`...)
		dst = appendBase64(dst, s.Position)
	}
	if !s.Time.IsZero() {
		dst = append(dst, `,"ts_ms":`...)
		dst = strconv.AppendInt(dst, s.Time.UnixMilli(), 10)
	}
	return append(dst, '}')
}

func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

func appendBase64List(dst []byte, list [][]byte) []byte {
	dst = append(dst, '[')
	for i, b := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendBase64(dst, b)
	}
	return append(dst, ']')
}

func appendHex(dst, b []byte) []byte {
	const digits = "0123456789abcdef"
	for _, c := range b {
		dst = append(dst, digits[c>>4], digits[c&0xf])
	}
	return dst
}

// appendString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; values that must survive byte for byte are base64 and
// never go through here.
func appendString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
