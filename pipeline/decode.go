package pipeline

import (
	"encoding/base64"
	"fmt"
	json "github.com/goccy/go-json"
	"time"
	"unicode/utf8"
)

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
