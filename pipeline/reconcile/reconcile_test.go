package reconcile

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cutover/cutover/pipeline"
)

type pages []pipeline.Batch

func (p *pages) Next(context.Context) (pipeline.Batch, bool, error) {
	b := (*p)[0]
	*p = (*p)[1:]
	return b, len(*p) == 0, nil
}

type target map[string]Found

func (t target) Lookup(_ context.Context, keys [][]byte) (map[string]Found, error) {
	out := map[string]Found{}
	for _, k := range keys {
		if string(k) == "unaddressable" {
			continue
		}
		out[string(k)] = t[string(k)]
	}
	return out, nil
}

func str(s string) pipeline.Value {
	return pipeline.Value{Type: pipeline.TypeString, String: []byte(s)}
}

func ev(key string, v pipeline.Value, exp time.Time) pipeline.Event {
	return pipeline.Event{Key: []byte(key), Op: pipeline.OpUpsert, Origin: pipeline.OriginRepair, Value: v, ExpireAt: exp}
}

func TestRunFindsEveryKind(t *testing.T) {
	exp := time.Unix(2_000_000_000, 0)
	src := pages{
		{Events: []pipeline.Event{ev("equal", str("a"), time.Time{}), ev("missing", str("a"), time.Time{}), ev("changed", str("a"), time.Time{})}},
		{Events: []pipeline.Event{ev("ttl", str("a"), exp), ev("ttl-ok", str("a"), exp.Add(1500*time.Millisecond)), ev("unreadable", str("a"), time.Time{}),
			ev("unaddressable", str("a"), time.Time{}), ev("wrong-type", str("a"), time.Time{})},
			Rejects: []pipeline.Reject{{Key: []byte("huge"), Err: errors.New("too big")}}},
	}
	tgt := target{
		"equal":      {Exists: true, Value: str("a")},
		"changed":    {Exists: true, Value: str("b")},
		"ttl":        {Exists: true, Value: str("a"), ExpireAt: exp.Add(time.Hour)},
		"ttl-ok":     {Exists: true, Value: str("a"), ExpireAt: exp},
		"unreadable": {Exists: true, Err: errors.New("not our mapping")},
		"wrong-type": {Exists: true, Value: pipeline.Value{Type: pipeline.TypeList, List: [][]byte{[]byte("a")}}},
	}
	rep, err := Run(context.Background(), &src, tgt, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[Kind]int64{Missing: 1, Different: 2, TTLDifferent: 1, Unreadable: 1, Unaddressable: 1, NotComparable: 1}
	for k, n := range want {
		if rep.Counts[k] != n {
			t.Errorf("%s = %d, want %d (samples %v)", k, rep.Counts[k], n, rep.Samples[k])
		}
	}
	if rep.Compared != 8 || rep.Equal != 2 || rep.Differences() != 6 {
		t.Fatalf("compared %d equal %d differences %d", rep.Compared, rep.Equal, rep.Differences())
	}
	if s := rep.Samples[Missing]; len(s) != 1 || s[0].Key != "missing" {
		t.Fatalf("missing samples %v", s)
	}
}
