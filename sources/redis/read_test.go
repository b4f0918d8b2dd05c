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
		"string with ttl": {[]any{"1700000000", "250000", "string", int64(1500), "hello"}, func(t *testing.T, r readResult, v pipeline.Value) {
			if string(v.String) != "hello" {
				t.Fatalf("value %q", v.String)
			}
			want := time.UnixMicro(1700000000_250000).Add(1500 * time.Millisecond)
			if !r.expireAt().Equal(want) {
				t.Fatalf("expireAt %v, want %v", r.expireAt(), want)
			}
		}},
		"hash": {[]any{"1", "2", "hash", int64(-1), []any{"f1", "v1", "f2", ""}}, func(t *testing.T, r readResult, v pipeline.Value) {
			if len(v.Hash) != 2 || string(v.Hash[1].Name) != "f2" || len(v.Hash[1].Value) != 0 || !r.expireAt().IsZero() {
				t.Fatalf("hash %+v, expiry %v", v.Hash, r.expireAt())
			}
		}},
		"zset with infinities": {[]any{"1", "2", "zset", int64(-1), []any{"a", "-inf", "b", "1.5", "c", "inf"}}, func(t *testing.T, r readResult, v pipeline.Value) {
			if !math.IsInf(v.ZSet[0].Score, -1) || v.ZSet[1].Score != 1.5 || !math.IsInf(v.ZSet[2].Score, 1) {
				t.Fatalf("zset %+v", v.ZSet)
			}
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := parseRead("k", c.reply)
			if err != nil {
				t.Fatal(err)
			}
			v, err := r.toValue("k")
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, r, v)
		})
	}
	for _, kind := range []string{"none", "skip", "big", "unsupported"} {
		r, err := parseRead("k", []any{"1", "2", kind, "stream", int64(5)})
		if err != nil || r.kind != kind {
			t.Fatalf("%s: %+v %v", kind, r, err)
		}
	}
	for name, bad := range map[string]any{
		"not an array": "x", "short": []any{"1"}, "bad time": []any{"x", "2", "string", int64(1), "v"},
		"bad pttl": []any{"1", "2", "string", "x", "v"}, "odd hash": []any{"1", "2", "hash", int64(-1), []any{"f"}},
	} {
		r, err := parseRead("k", bad)
		if err == nil {
			_, err = r.toValue("k")
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
