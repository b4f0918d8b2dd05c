package pipeline

import (
	"encoding/base64"
	"fmt"
	json "github.com/goccy/go-json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// FormatVersion is the version of the wire format written by Encode. Decode
// reads this version and rejects others with ErrDecode.
const FormatVersion = 1

// ContentType is the value of the content-type header of every record.
const ContentType = "application/vnd.cutover.event.v1+json"

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

// AppendScore appends a sorted-set score in the shortest form that parses
// back to the same float64; infinities are "inf" and "-inf" as in Redis.
func AppendScore(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// ParseScore is the inverse of AppendScore; it also reads Redis' own
// spellings ("+inf", "inf", "-inf").
func ParseScore(s string) (float64, error) {
	switch s {
	case "inf", "+inf", "Inf", "+Inf":
		return math.Inf(1), nil
	case "-inf", "-Inf":
		return math.Inf(-1), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("score %q is not a number", s)
	}
	return f, nil
}

// AppendItemJSON appends an item as DynamoDB JSON, attributes sorted by
// name.
func AppendItemJSON(dst []byte, m map[string]Attr) []byte { return appendAttrMap(dst, m) }

// ParseItemJSON reads an item written by AppendItemJSON (or any item in
// DynamoDB JSON).
func ParseItemJSON(data []byte) (map[string]Attr, error) {
	var w map[string]wireAttr
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("item JSON: %w", err)
	}
	out := make(map[string]Attr, len(w))
	for k, v := range w {
		out[k] = v.Attr
	}
	return out, nil
}

// appendAttrMap writes the attributes sorted by name, so one item always
// encodes to the same bytes.
func appendAttrMap(dst []byte, m map[string]Attr) []byte {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	dst = append(dst, '{')
	for i, k := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		a := m[k]
		dst = appendAttr(dst, &a)
	}
	return append(dst, '}')
}

// appendAttr writes DynamoDB JSON: {"S":"…"}, {"N":"…"}, {"B":"base64"}, ….
func appendAttr(dst []byte, a *Attr) []byte {
	dst = append(dst, `{"`...)
	dst = append(dst, a.Kind.String()...)
	dst = append(dst, `":`...)
	switch a.Kind {
	case AttrS:
		dst = appendString(dst, a.S)
	case AttrN:
		dst = appendString(dst, a.N)
	case AttrB:
		dst = appendBase64(dst, a.B)
	case AttrBOOL:
		dst = strconv.AppendBool(dst, a.BOOL)
	case AttrNULL:
		dst = append(dst, "true"...)
	case AttrL:
		dst = append(dst, '[')
		for i := range a.L {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendAttr(dst, &a.L[i])
		}
		dst = append(dst, ']')
	case AttrM:
		dst = appendAttrMap(dst, a.M)
	case AttrSS, AttrNS:
		list := a.SS
		if a.Kind == AttrNS {
			list = a.NS
		}
		dst = append(dst, '[')
		for i, s := range list {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, s)
		}
		dst = append(dst, ']')
	case AttrBS:
		dst = appendBase64List(dst, a.BS)
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

// ---------------------------------------------------------------- decoding

type wireEvent struct {
	V       *int        `json:"v"`
	Op      string      `json:"op"`
	Key     *[]byte     `json:"key"` // nil when absent: a truncate; "" is the empty key
	Version string      `json:"version"`
	Origin  string      `json:"origin"`
	After   *wireValue  `json:"after"`
	Scope   *wireScope  `json:"scope"`
	Source  *wireSource `json:"source"`
}

type wireScope struct {
	Partition  int32    `json:"partition"`
	Partitions int32    `json:"partitions"`
	Include    []string `json:"include"`
	Exclude    []string `json:"exclude"`
	Slots      [][2]int `json:"slots"`
}

type wireChunk struct {
	Index  int   `json:"index"`
	Offset int64 `json:"offset"`
	Last   bool  `json:"last"`
}

type wireValue struct {
	Type       string              `json:"type"`
	ExpireAtMs *int64              `json:"expire_at_ms"`
	Chunk      *wireChunk          `json:"chunk"`
	String     []byte              `json:"string"`
	Hash       [][2][]byte         `json:"hash"`
	List       [][]byte            `json:"list"`
	Set        [][]byte            `json:"set"`
	ZSet       [][2]string         `json:"zset"`
	Item       map[string]wireAttr `json:"item"`
	Stream     *wireStream         `json:"stream"`
}

type wireStream struct {
	Entries []struct {
		ID     string      `json:"id"`
		Fields [][2][]byte `json:"fields"`
	} `json:"entries"`
	LastID       string `json:"last_id"`
	MaxDeletedID string `json:"max_deleted_id"`
	EntriesAdded int64  `json:"entries_added"`
	Groups       []struct {
		Name            []byte `json:"name"`
		LastDeliveredID string `json:"last_delivered_id"`
		EntriesRead     int64  `json:"entries_read"`
	} `json:"groups"`
}

type wireSource struct {
	Connector string `json:"connector"`
	Name      string `json:"name"`
	DB        int    `json:"db"`
	Table     string `json:"table"`
	Node      string `json:"node"`
	Pos       []byte `json:"pos"`
	TsMs      int64  `json:"ts_ms"`
}

type wireAttr struct{ Attr }

// Decode parses one record value written by Encode. Any input that is not a
// valid format-1 event — truncated, corrupted, from another producer —
// returns an error wrapping ErrDecode; Decode never panics.
func Decode(data []byte) (Event, error) {
	// Encode writes valid UTF-8 only (binary travels as base64, invalid
	// text is replaced). Rejecting anything else up front also keeps the
	// decoder's handling of invalid UTF-8 out of the picture.
	if !utf8.Valid(data) {
		return Event{}, fmt.Errorf("%w: not valid UTF-8 (not a cutover event?)", ErrDecode)
	}
	var w wireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	if w.V == nil {
		return Event{}, fmt.Errorf("%w: no format version field \"v\" (not a cutover event?)", ErrDecode)
	}
	if *w.V != FormatVersion {
		return Event{}, fmt.Errorf("%w: format version %d, this cutover reads version %d (upgrade cutover)", ErrDecode, *w.V, FormatVersion)
	}
	var e Event
	switch w.Op {
	case "r", "c", "u":
		e.Op = OpUpsert
	case "d":
		e.Op = OpDelete
	case "t":
		e.Op = OpTruncate
	default:
		return Event{}, fmt.Errorf("%w: unknown op %q", ErrDecode, w.Op)
	}
	// An absent key and the empty key differ: a truncate has no key field
	// at all, while "key":"" is the empty key (Redis' SET "" v) and is
	// never nil once decoded, so the publisher partitions it by its hash.
	switch {
	case e.Op == OpTruncate && w.Key != nil:
		return Event{}, fmt.Errorf("%w: a truncate event has no \"key\"", ErrDecode)
	case e.Op != OpTruncate && w.Key == nil:
		return Event{}, fmt.Errorf("%w: %s without \"key\"", ErrDecode, e.Op)
	case e.Op != OpTruncate:
		e.Key = nonNil(*w.Key)
	}
	switch w.Origin {
	case "snapshot":
		e.Origin = OriginSnapshot
	case "live":
		e.Origin = OriginLive
	case "repair":
		e.Origin = OriginRepair
	default:
		return Event{}, fmt.Errorf("%w: unknown origin %q", ErrDecode, w.Origin)
	}
	v, err := ParseVersion(w.Version)
	if err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	e.Version = v
	if e.Op == OpUpsert {
		if w.After == nil {
			return Event{}, fmt.Errorf("%w: upsert without \"after\"", ErrDecode)
		}
		if e.Value, e.ExpireAt, err = w.After.value(); err != nil {
			return Event{}, fmt.Errorf("%w: %w", ErrDecode, err)
		}
		if c := w.After.Chunk; c != nil {
			e.Chunk = &Chunk{Index: c.Index, Offset: c.Offset, Last: c.Last}
		}
	} else if w.After != nil {
		return Event{}, fmt.Errorf("%w: %s with \"after\"", ErrDecode, e.Op)
	}
	if sc := w.Scope; sc != nil {
		e.Scope = &Scope{Partition: sc.Partition, Partitions: sc.Partitions, Slots: nilIfEmpty(sc.Slots),
			Filter: KeyFilter{Include: nilIfEmpty(sc.Include), Exclude: nilIfEmpty(sc.Exclude)}}
	}
	if s := w.Source; s != nil {
		e.Source = SourceInfo{Connector: s.Connector, Name: s.Name, DB: s.DB, Table: s.Table, Node: s.Node}
		if len(s.Pos) > 0 {
			e.Source.Position = s.Pos
		}
		if s.TsMs != 0 {
			e.Source.Time = time.UnixMilli(s.TsMs)
		}
	}
	if err := e.Validate(); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	return e, nil
}

func (w *wireValue) value() (Value, time.Time, error) {
	var v Value
	var expireAt time.Time
	t, err := ParseType(w.Type)
	if err != nil {
		return v, expireAt, err
	}
	v.Type = t
	if w.ExpireAtMs != nil {
		expireAt = time.UnixMilli(*w.ExpireAtMs)
	}
	switch t {
	case TypeString:
		v.String = w.String
		if v.String == nil {
			return v, expireAt, fmt.Errorf("string value without \"string\"")
		}
	case TypeHash:
		v.Hash = make([]Field, len(w.Hash))
		for i, p := range w.Hash {
			v.Hash[i] = Field{Name: nonNil(p[0]), Value: nonNil(p[1])}
		}
	case TypeList:
		v.List = nonNilAll(w.List)
	case TypeSet:
		v.Set = nonNilAll(w.Set)
	case TypeZSet:
		v.ZSet = make([]ScoredMember, len(w.ZSet))
		for i, p := range w.ZSet {
			m, err := base64.StdEncoding.DecodeString(p[0])
			if err != nil {
				return v, expireAt, fmt.Errorf("zset member %d: %w", i, err)
			}
			s, err := ParseScore(p[1])
			if err != nil {
				return v, expireAt, fmt.Errorf("zset member %d: %w", i, err)
			}
			v.ZSet[i] = ScoredMember{Member: m, Score: s}
		}
	case TypeItem:
		v.Item = make(map[string]Attr, len(w.Item))
		for k, a := range w.Item {
			v.Item[k] = a.Attr
		}
	case TypeStream:
		if w.Stream == nil {
			return v, expireAt, fmt.Errorf("stream value without \"stream\"")
		}
		st := &Stream{LastID: w.Stream.LastID, MaxDeletedID: w.Stream.MaxDeletedID, EntriesAdded: w.Stream.EntriesAdded}
		for _, e := range w.Stream.Entries {
			fields := make([]Field, len(e.Fields))
			for i, f := range e.Fields {
				fields[i] = Field{Name: nonNil(f[0]), Value: nonNil(f[1])}
			}
			st.Entries = append(st.Entries, StreamEntry{ID: e.ID, Fields: fields})
		}
		for _, g := range w.Stream.Groups {
			st.Groups = append(st.Groups, StreamGroup{Name: nonNil(g.Name), LastDeliveredID: g.LastDeliveredID, EntriesRead: g.EntriesRead})
		}
		v.Stream = st
	case TypeNone:
		return v, expireAt, fmt.Errorf("upsert of type none")
	}
	return v, expireAt, nil
}

// nilIfEmpty makes an empty JSON array and an absent one decode alike.
func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func nonNilAll(list [][]byte) [][]byte {
	for i := range list {
		list[i] = nonNil(list[i])
	}
	return list
}

// UnmarshalJSON reads DynamoDB JSON: an object with exactly one type key.
func (w *wireAttr) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if len(raw) != 1 {
		return fmt.Errorf("attribute value must have exactly one type key, has %d", len(raw))
	}
	for k, msg := range raw {
		a, err := decodeAttr(k, msg)
		if err != nil {
			return fmt.Errorf("attribute %s: %w", k, err)
		}
		w.Attr = a
	}
	return nil
}

func decodeAttr(kind string, msg json.RawMessage) (Attr, error) {
	var a Attr
	var err error
	switch kind {
	case "S":
		a.Kind = AttrS
		err = json.Unmarshal(msg, &a.S)
	case "N":
		a.Kind = AttrN
		err = json.Unmarshal(msg, &a.N)
	case "B":
		a.Kind = AttrB
		err = json.Unmarshal(msg, &a.B)
		a.B = nonNil(a.B)
	case "BOOL":
		a.Kind = AttrBOOL
		err = json.Unmarshal(msg, &a.BOOL)
	case "NULL":
		a.Kind = AttrNULL
	case "L":
		a.Kind = AttrL
		var l []wireAttr
		err = json.Unmarshal(msg, &l)
		a.L = make([]Attr, len(l))
		for i := range l {
			a.L[i] = l[i].Attr
		}
	case "M":
		a.Kind = AttrM
		var m map[string]wireAttr
		err = json.Unmarshal(msg, &m)
		a.M = make(map[string]Attr, len(m))
		for k, v := range m {
			a.M[k] = v.Attr
		}
	case "SS":
		a.Kind = AttrSS
		err = json.Unmarshal(msg, &a.SS)
	case "NS":
		a.Kind = AttrNS
		err = json.Unmarshal(msg, &a.NS)
	case "BS":
		a.Kind = AttrBS
		err = json.Unmarshal(msg, &a.BS)
		a.BS = nonNilAll(a.BS)
	default:
		return a, fmt.Errorf("unknown attribute type")
	}
	return a, err
}
