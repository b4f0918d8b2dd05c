package chaos

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// KeyState is one key as a store holds it: its Redis type, its whole
// value, its absolute expiry and the writer's sequence number in it.
type KeyState struct {
	// Type is the Redis type (string, hash, …).
	Type string
	// Value is the whole value: a string's bytes; a hash's fields and
	// values, sorted by field (HashValue); any other type's DUMP.
	Value []byte
	// ExpireAt is the absolute expiry in Unix milliseconds, 0 for none.
	// Absolute, not a TTL: cutover carries the source's absolute expiry
	// (in the source server's clock), so the two compare even while the
	// source's clock is stepped.
	ExpireAt int64
	// Seq is the writer's sequence number in the value (HasSeq false for
	// a value no writer made).
	Seq    int64
	HasSeq bool
}

// HashValue is the canonical bytes of a hash: its fields sorted, each
// field and value length-prefixed.
func HashValue(h map[string]string) []byte {
	fields := make([]string, 0, len(h))
	for f := range h {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	var b []byte
	for _, f := range fields {
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ':')
		b = append(b, f...)
		b = strconv.AppendInt(b, int64(len(h[f])), 10)
		b = append(b, ':')
		b = append(b, h[f]...)
	}
	return b
}

// SeqField is the hash field that holds an item writer's sequence number.
const SeqField = "seq"

// readKeyScript reads one key atomically: type, value, absolute expiry.
var readKeyScript = goredis.NewScript(`
local k = KEYS[1]
local t = redis.call('TYPE', k)['ok']
local e = redis.call('PEXPIRETIME', k)
if t == 'none' then return {t, '', e} end
if t == 'string' then return {t, redis.call('GET', k), e} end
if t == 'hash' then return {t, redis.call('HGETALL', k), e} end
return {t, redis.call('DUMP', k), e}
`)

// ReadRedis reads every key of cl's database except those starting with
// skipPrefix (cutover's version keys), each atomically.
func ReadRedis(ctx context.Context, cl *goredis.Client, skipPrefix string) (map[string]KeyState, error) {
	var keys []string
	iter := cl.Scan(ctx, 0, "", 1000).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); skipPrefix == "" || !strings.HasPrefix(k, skipPrefix) {
			keys = append(keys, k)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("scan %s: %w", cl.Options().Addr, err)
	}
	return ReadRedisKeys(ctx, cl, keys)
}

// ReadRedisKeys reads the given keys, each atomically; absent keys are
// not in the map.
func ReadRedisKeys(ctx context.Context, cl *goredis.Client, keys []string) (map[string]KeyState, error) {
	if err := readKeyScript.Load(ctx, cl).Err(); err != nil {
		return nil, fmt.Errorf("load the read script into %s: %w", cl.Options().Addr, err)
	}
	out := make(map[string]KeyState, len(keys))
	for start := 0; start < len(keys); start += 500 {
		batch := keys[start:min(start+500, len(keys))]
		pipe := cl.Pipeline()
		cmds := make([]*goredis.Cmd, len(batch))
		for i, k := range batch {
			cmds[i] = readKeyScript.EvalSha(ctx, pipe, []string{k})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read %d keys of %s: %w", len(batch), cl.Options().Addr, err)
		}
		for i, c := range cmds {
			st, ok, err := parseKeyState(c.Val())
			if err != nil {
				return nil, fmt.Errorf("key %q of %s: %w", batch[i], cl.Options().Addr, err)
			}
			if ok {
				out[batch[i]] = st
			}
		}
	}
	return out, nil
}

func parseKeyState(v any) (KeyState, bool, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) != 3 {
		return KeyState{}, false, fmt.Errorf("unexpected reply %v", v)
	}
	st := KeyState{}
	st.Type, _ = arr[0].(string)
	if st.Type == "none" {
		return st, false, nil
	}
	if e, _ := arr[2].(int64); e > 0 {
		st.ExpireAt = e
	}
	switch val := arr[1].(type) {
	case string:
		st.Value = []byte(val)
		if st.Type == "string" {
			st.Seq, st.HasSeq = Seq(st.Value)
		}
	case []any:
		h := make(map[string]string, len(val)/2)
		for i := 0; i+1 < len(val); i += 2 {
			f, _ := val[i].(string)
			x, _ := val[i+1].(string)
			h[f] = x
		}
		st.Value = HashValue(h)
		if n, err := strconv.ParseInt(h[SeqField], 10, 64); err == nil {
			st.Seq, st.HasSeq = n, true
		}
	default:
		return st, false, fmt.Errorf("unexpected value %T", arr[1])
	}
	return st, true, nil
}

// Diff is what differs between a source's keys and a target's.
type Diff struct {
	Compared int
	// Lost: in the source, not in the target. Resurrected: in the
	// target, not in the source. Older: the target's value carries a
	// smaller sequence number than the source's. Different: type, value
	// or expiry differ otherwise.
	Lost, Resurrected, Older, Different int
	// Expiring are keys skipped because one side holds them and their
	// expiry is within the tolerance of now: the other side may have
	// expired them a moment earlier.
	Expiring int
	Examples []string
}

// OK is true when nothing differs.
func (d Diff) OK() bool { return d.Lost+d.Resurrected+d.Older+d.Different == 0 }

func (d Diff) String() string {
	s := fmt.Sprintf("%d keys compared: %d lost, %d resurrected, %d older in the target, %d different (%d skipped as expiring)",
		d.Compared, d.Lost, d.Resurrected, d.Older, d.Different, d.Expiring)
	if len(d.Examples) > 0 {
		s += "\n    " + strings.Join(d.Examples, "\n    ")
	}
	return s
}

// CompareStates compares a source's keys with a target's, key by key:
// type, whole value, and absolute expiry within tolerance. now is when
// they were read.
func CompareStates(src, dst map[string]KeyState, now time.Time, tolerance time.Duration) Diff {
	var d Diff
	note := func(format string, args ...any) {
		if len(d.Examples) < 10 {
			d.Examples = append(d.Examples, fmt.Sprintf(format, args...))
		}
	}
	nowMs, tol := now.UnixMilli(), tolerance.Milliseconds()
	expiring := func(st KeyState) bool { return st.ExpireAt != 0 && st.ExpireAt <= nowMs+tol }
	keys := make([]string, 0, len(src)+len(dst))
	for k := range src {
		keys = append(keys, k)
	}
	for k := range dst {
		if _, ok := src[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		s, inSrc := src[k]
		g, inDst := dst[k]
		switch {
		case inSrc && !inDst:
			if expiring(s) {
				d.Expiring++
				continue
			}
			d.Compared++
			d.Lost++
			note("%q lost: the source holds %s seq %d, the target nothing", k, s.Type, s.Seq)
		case !inSrc && inDst:
			if expiring(g) {
				d.Expiring++
				continue
			}
			d.Compared++
			d.Resurrected++
			note("%q resurrected: absent in the source, the target holds %s seq %d", k, g.Type, g.Seq)
		default:
			d.Compared++
			switch {
			case s.Type != g.Type || !bytes.Equal(s.Value, g.Value):
				if s.HasSeq && g.HasSeq && g.Seq < s.Seq {
					d.Older++
					note("%q older in the target: seq %d, the source has seq %d", k, g.Seq, s.Seq)
				} else {
					d.Different++
					note("%q differs: source %s seq %d (%d bytes), target %s seq %d (%d bytes)", k, s.Type, s.Seq, len(s.Value), g.Type, g.Seq, len(g.Value))
				}
			case (s.ExpireAt == 0) != (g.ExpireAt == 0) || abs(s.ExpireAt-g.ExpireAt) > tol:
				if expiring(s) || expiring(g) {
					d.Expiring++
					continue
				}
				d.Different++
				note("%q expiry differs: source %s, target %s", k, expiry(s.ExpireAt), expiry(g.ExpireAt))
			}
		}
	}
	return d
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func expiry(ms int64) string {
	if ms == 0 {
		return "never"
	}
	return time.UnixMilli(ms).UTC().Format("15:04:05.000")
}
