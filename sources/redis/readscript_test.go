package redis

import (
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/cutover/cutover/pipeline"
)

func TestParseRead(t *testing.T) {
	// What go-redis returns for the read script's replies.
	cases := map[string]struct {
		reply any
		check func(t *testing.T, r readResult, v pipeline.Value)
	}{
		"string with ttl": {[]any{"1700000000", "250000", "string", int64(1500), int64(0), "hello"}, func(t *testing.T, r readResult, v pipeline.Value) {
			if string(v.String) != "hello" {
				t.Fatalf("value %q", v.String)
			}
			want := time.UnixMicro(1700000000_250000).Add(1500 * time.Millisecond)
			if !r.expireAt().Equal(want) {
				t.Fatalf("expireAt %v, want %v", r.expireAt(), want)
			}
		}},
		"hash": {[]any{"1", "2", "hash", int64(-1), int64(0), []any{"f1", "v1", "f2", ""}}, func(t *testing.T, r readResult, v pipeline.Value) {
			if len(v.Hash) != 2 || string(v.Hash[1].Name) != "f2" || len(v.Hash[1].Value) != 0 || !r.expireAt().IsZero() {
				t.Fatalf("hash %+v, expiry %v", v.Hash, r.expireAt())
			}
		}},
		"zset with infinities": {[]any{"1", "2", "zset", int64(-1), int64(0), []any{"a", "-inf", "b", "1.5", "c", "inf"}}, func(t *testing.T, r readResult, v pipeline.Value) {
			if !math.IsInf(v.ZSet[0].Score, -1) || v.ZSet[1].Score != 1.5 || !math.IsInf(v.ZSet[2].Score, 1) {
				t.Fatalf("zset %+v", v.ZSet)
			}
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			rs, err := parseReads([]string{"k"}, c.reply)
			if err != nil {
				t.Fatal(err)
			}
			v, err := rs[0].toValue("k")
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, rs[0], v)
		})
	}
	for _, kind := range []string{"none", "skip", "big", "unsupported", "chunk"} {
		rs, err := parseReads([]string{"k"}, []any{"1", "2", kind, int64(7), int64(5), "stream"})
		if err != nil || rs[0].kind != kind {
			t.Fatalf("%s: %+v %v", kind, rs, err)
		}
		if kind != "none" && (rs[0].typ != "stream" || rs[0].size != 5 || rs[0].pttl != 7) {
			t.Errorf("%s: %+v", kind, rs[0])
		}
	}
	// A page: one TIME, then each key read; fewer keys than asked for.
	rs, err := parseReads([]string{"a", "b", "c"}, []any{"1", "2", "string", int64(-1), int64(0), "x", "none", int64(0), int64(0), ""})
	if err != nil || len(rs) != 2 || rs[0].kind != "string" || rs[1].kind != "none" || rs[1].micros != rs[0].micros {
		t.Fatalf("page: %+v %v", rs, err)
	}
	for name, bad := range map[string]any{
		"not an array": "x", "short": []any{"1"}, "bad time": []any{"x", "2", "string", int64(1), int64(0), "v"},
		"bad pttl": []any{"1", "2", "string", "x", int64(0), "v"}, "odd hash": []any{"1", "2", "hash", int64(-1), int64(0), []any{"f"}},
		"torn": []any{"1", "2", "string", int64(1), int64(0)}, "more keys than asked": []any{"1", "2", "none", int64(0), int64(0), "", "none", int64(0), int64(0), ""},
	} {
		rs, err := parseReads([]string{"k"}, bad)
		if err == nil {
			_, err = rs[0].toValue("k")
		}
		if err == nil {
			t.Errorf("%s: accepted %v", name, bad)
		}
	}
}

// A read script refused by the ACL (the user may not run a command the
// script calls) used to count as transient: a backfill retried it for two
// minutes before failing. It fails at once now; a lost connection stays
// transient.
func TestTransientLeavesACLRefusals(t *testing.T) {
	refused := errors.New("ERR The user executing the script can't run this command or subcommand script: 1f0c, on @user_script:1.")
	if transient(refused) {
		t.Error("a script refused by the ACL is retried")
	}
	if !transient(io.ErrUnexpectedEOF) {
		t.Error("a lost connection is not retried")
	}
}
