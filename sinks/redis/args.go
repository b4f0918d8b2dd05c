package redis

import (
	"fmt"
	"strconv"

	"github.com/cutover/cutover/pipeline"
)

// args builds the apply script's ARGV for an event.
func (s *Sink) args(e *pipeline.Event) ([]any, error) {
	if e.Value.Type == pipeline.TypeItem && s.opts.Items != nil {
		v, err := s.opts.Items.itemValue(e.Value.Item)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %w", pipeline.ErrUnmappable, e.Key, err)
		}
		c := *e
		c.Value = v
		e = &c
	}
	exp := ""
	if !e.ExpireAt.IsZero() {
		exp = strconv.FormatInt(e.ExpireAt.UnixMilli(), 10)
	}
	op, offset := "u", ""
	switch {
	case e.Op == pipeline.OpDelete:
		op = "d"
	case e.Chunk != nil && e.Chunk.Index > 0:
		op = "c"
		offset = strconv.FormatInt(e.Chunk.Offset, 10)
	}
	v := &e.Value
	a := make([]any, 0, 6+2*v.Len())
	ver, err := compactVersion(e.Version)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", e.Key, err)
	}
	a = append(a, ver, op, v.Type.String(), exp, "", offset)
	switch v.Type {
	case pipeline.TypeNone:
		a[2] = "none"
	case pipeline.TypeString:
		a = append(a, v.String)
	case pipeline.TypeHash:
		for _, f := range v.Hash {
			a = append(a, f.Name, f.Value)
		}
	case pipeline.TypeList:
		for _, x := range v.List {
			a = append(a, x)
		}
	case pipeline.TypeSet:
		for _, x := range v.Set {
			a = append(a, x)
		}
	case pipeline.TypeZSet:
		for _, m := range v.ZSet {
			a = append(a, pipeline.AppendScore(nil, m.Score), m.Member)
		}
	case pipeline.TypeStream:
		// The apply script cannot undo what it wrote before a failing
		// call: every fault it could meet is looked for here first.
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("%w: key %q: %w", pipeline.ErrInvalidEvent, e.Key, err)
		}
		last := e.Chunk == nil || e.Chunk.Last
		if last && v.Stream.LastID == "" {
			return nil, fmt.Errorf("%w: key %q: a whole stream, or its last piece, needs its last ID", pipeline.ErrInvalidEvent, e.Key)
		}
		if a, err = streamArgs(a, v.Stream, last); err != nil {
			return nil, fmt.Errorf("%w: key %q: %w", pipeline.ErrUnmappable, e.Key, err)
		}
	default:
		return nil, fmt.Errorf("%w: key %q: a DynamoDB item has no Redis form in this sink yet", pipeline.ErrUnmappable, e.Key)
	}
	return a, nil
}

// streamArgs appends a stream's ARGV from ARGV[7] on: 1 at the value's
// last piece (or whole value), else 0; the last ID; the max deleted ID
// and entries-added ("" and -1 when unknown); the ID to set the counters
// at (the later of the last and the max deleted ID: XSETID refuses a max
// deleted ID past the ID it sets); the number of groups, and name,
// last-delivered ID, entries-read of each; then each entry's ID, number
// of fields, and field, value, …. The stream is valid (Value.Validate).
func streamArgs(a []any, st *pipeline.Stream, last bool) ([]any, error) {
	flag := "0"
	if last {
		flag = "1"
	}
	counterID := st.LastID
	if l, err := pipeline.ParseStreamID(st.LastID); err == nil {
		if m, err := pipeline.ParseStreamID(st.MaxDeletedID); err == nil && l.Less(m) {
			counterID = st.MaxDeletedID
		}
	}
	a = append(a, flag, st.LastID, st.MaxDeletedID, strconv.FormatInt(st.EntriesAdded, 10), counterID, strconv.Itoa(len(st.Groups)))
	for _, g := range st.Groups {
		a = append(a, g.Name, g.LastDeliveredID, strconv.FormatInt(g.EntriesRead, 10))
	}
	for _, e := range st.Entries {
		if len(e.Fields) > maxEntryFields {
			return nil, fmt.Errorf("stream entry %s has %d fields; a Redis target takes at most %d per entry through cutover's apply script", e.ID, len(e.Fields), maxEntryFields)
		}
		a = append(a, e.ID, strconv.Itoa(len(e.Fields)))
		for _, f := range e.Fields {
			a = append(a, f.Name, f.Value)
		}
	}
	return a, nil
}
