package redis

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
)

// readScript reads one key atomically: the server's TIME (the version of
// the read), the key's type, its PTTL and its whole value, or tells why it
// was not read whole. Lua scripts run atomically, so no write can fall
// between the time and the value. The script declares its key, so it runs
// on Redis Cluster too. It is what pageScript falls back to (see
// Reader.Read), and what reads a key alone.
//
// ARGV[1]: ",type,type," of the types to read, or "" for all.
// ARGV[2]: the most elements of a collection copied at all.
// ARGV[3]: the most bytes of a string copied.
// ARGV[4]: the most elements of a collection read in one piece.
// ARGV[5]: the most bytes (in memory) of a collection read in one piece;
// for a stream, the most bytes its entries take in the event.
// ARGV[6]: the most bytes of a string read whole; a longer one (up to
// ARGV[3]) is read in pieces.
//
// Returns {sec, usec, kind, pttl, size, value} (see readKeyLua).
var readScript = goredis.NewScript(readKeyLua + `
local t = redis.call('TIME')
local out = {t[1], t[2]}
readKey(KEYS[1], out)
return out
`)

// pageScript reads many keys (all declared in KEYS, so managed servers
// that check a script's keys accept it, and all in one slot on a
// cluster) in one call, at one TIME: the script runs atomically, so every
// read in it sees the server's state at that one instant, which is the
// version of all of them. ARGV[1] to ARGV[6] are readScript's; ARGV[7] is
// the budget of the reply: once the values read add up to that many bytes
// (strings by their length, collections by MEMORY USAGE, streams by their
// event size), no further key is read — a call's work and its reply stay
// bounded whatever the keys hold. The first key is always read.
//
// Returns {sec, usec, then kind, pttl, size, value of each key read}
// (see readKeyLua), for the first n keys of KEYS (1 <= n <= #KEYS), in
// order; the keys after them were not read (Read reads them in a
// following call, at a TIME of their own).
var pageScript = goredis.NewScript(readKeyLua + `
local t = redis.call('TIME')
local budget = tonumber(ARGV[7])
local out, used = {t[1], t[2]}, 0
for _, k in ipairs(KEYS) do
  if used >= budget then break end
  used = used + #k + readKey(k, out)
end
return out
`)

// readKeyLua defines readKey(k, out): reads key k and appends four
// values to out — kind, pttl, size, value — and returns about how many
// bytes the value adds to the reply (0 when it has none). The reply is
// flat, with no table per key, because building and sending a table per
// key costs the server about as much as reading a short string. ARGV is
// readScript's. What the four values are:
//
//	type, pttl, 0, value      a key read whole (a stream's value is
//	                          {entries, meta}, see streamMetaLua)
//	"none", 0, 0, ""          a key that is gone
//	"skip", 0, 0, type        a type not asked for
//	"big", 0, size, type      a value over the limits
//	"unsupported", 0, 0, type a type cutover cannot carry
//	"chunk", pttl, size, type a collection or string to read in pieces
//	                          (at this version)
const readKeyLua = streamMetaLua + `
local types = ARGV[1]
local maxElems, maxBytes = tonumber(ARGV[2]), tonumber(ARGV[3])
local chunkElems, chunkBytes = tonumber(ARGV[4]), tonumber(ARGV[5])
local wholeBytes = tonumber(ARGV[6])
local whole = math.min(maxBytes, wholeBytes)
-- Numbers given to redis.call are formatted with printf on every call:
-- the ones of every key are passed as strings.
local wholeArg = tostring(whole)
local function put(out, kind, pttl, size, v)
  local i = #out
  out[i + 1], out[i + 2], out[i + 3], out[i + 4] = kind, pttl, size, v
end
local function readKey(k, out)
  local ty = redis.call('TYPE', k)['ok']
  if ty == 'none' then
    put(out, 'none', 0, 0, '')
    return 0
  end
  if types ~= '' and not string.find(types, ',' .. ty .. ',', 1, true) then
    put(out, 'skip', 0, 0, ty)
    return 0
  end
  local n
  if ty == 'string' then
    -- Most strings are short: read at most the longest one to read
    -- whole, plus a byte, and ask for the length only when it is longer.
    -- (One command fewer a key than STRLEN and GET: commands are what a
    -- page costs the server.)
    local v = redis.call('GETRANGE', k, '0', wholeArg)
    n = #v
    if n <= whole then
      put(out, ty, redis.call('PTTL', k), 0, v)
      return n
    end
    local copied = n
    n = redis.call('STRLEN', k)
    if n > maxBytes then
      put(out, 'big', 0, n, ty)
    else
      put(out, 'chunk', redis.call('PTTL', k), n, ty)
    end
    return copied
  elseif ty == 'hash' then
    n = redis.call('HLEN', k)
  elseif ty == 'list' then
    n = redis.call('LLEN', k)
  elseif ty == 'set' then
    n = redis.call('SCARD', k)
  elseif ty == 'zset' then
    n = redis.call('ZCARD', k)
  elseif ty == 'stream' then
    n = redis.call('XLEN', k)
  else
    put(out, 'unsupported', 0, 0, ty)
    return 0
  end
  if n > maxElems then
    put(out, 'big', 0, n, ty)
    return 0
  end
  local pieces = n > chunkElems
  -- Few elements may still be many bytes: estimate before loading them. A
  -- stream's memory says little of its event (its listpacks hold field
  -- names once per node and IDs as deltas): its entries, then its groups,
  -- are measured as they are read, below.
  local size = 0
  if not pieces and ty ~= 'stream' then
    size = redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '16') or 0
    if size > chunkBytes then pieces = true end
  end
  local entries, meta
  if not pieces and ty == 'stream' then
    entries, size = streamEntries(k, chunkBytes)
    if entries then
      meta = streamMeta(k)
      for _, g in ipairs(meta[2]) do
        size = size + 72 + 4 * math.ceil(#g[1] / 3) + #g[2]
      end
    end
    pieces = not entries or size > chunkBytes
  end
  if pieces then
    put(out, 'chunk', redis.call('PTTL', k), n, ty)
    return 0
  end
  local v
  if ty == 'hash' then
    v = redis.call('HGETALL', k)
  elseif ty == 'list' then
    v = redis.call('LRANGE', k, '0', '-1')
  elseif ty == 'set' then
    v = redis.call('SMEMBERS', k)
  elseif ty == 'stream' then
    v = {entries, meta}
  else
    v = redis.call('ZRANGE', k, '0', '-1', 'WITHSCORES')
  end
  if ty ~= 'stream' then
    -- MEMORY USAGE samples: measure what was read.
    local got = 0
    for _, e in ipairs(v) do got = got + #e end
    if got > chunkBytes then
      put(out, 'chunk', redis.call('PTTL', k), n, ty)
      return got
    end
    size = math.max(size, got)
  end
  put(out, ty, redis.call('PTTL', k), 0, v)
  return size
end
`

// streamMetaLua reads what a stream holds besides its entries, as
// {{last-generated-id, max-deleted-entry-id or "", entries-added or -1},
// {{group, last-delivered-id, entries-read or -1}, …}}. The last two
// counters and entries-read exist from Redis 7 on.
//
// streamEntries reads a stream's entries while their size in an event
// (streamEntrySize, in Go) stays within budget, and returns them and
// that size; false once it would not fit.
// Pages grow from 16 entries, so that a few huge entries are found
// without loading many. A page starts at the last ID of the one before,
// which it repeats: the exclusive "(" start needs Redis 6.2.
const streamMetaLua = `
local function streamEntries(k, budget)
  local out, size, start, from, count = {}, 0, '-', 1, 16
  while true do
    local page = redis.call('XRANGE', k, start, '+', 'COUNT', count)
    for i = from, #page do
      local e = page[i]
      size = size + 21 + #e[1]
      for _, part in ipairs(e[2]) do
        size = size + 4 * math.ceil(#part / 3) + 4
      end
      if size > budget then return false end
      out[#out + 1] = e
    end
    if #page < count then return out, size end
    start, from, count = page[#page][1], 2, math.min(2 * count, 1024)
  end
end
local function field(arr, name)
  for i = 1, #arr, 2 do
    if arr[i] == name then return arr[i + 1] end
  end
  return false
end
local function streamMeta(k)
  local info = redis.call('XINFO', 'STREAM', k)
  local groups = {}
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', k)) do
    table.insert(groups, {field(g, 'name'), field(g, 'last-delivered-id'), field(g, 'entries-read') or -1})
  end
  return {{field(info, 'last-generated-id'), field(info, 'max-deleted-entry-id') or '', field(info, 'entries-added') or -1}, groups}
end
`

// readResult is what the script said about one key.
type readResult struct {
	kind   string // a type name, or "none", "skip", "big", "unsupported", "chunk"
	typ    string // the key's type for skip, big, unsupported and chunk
	size   int64  // for big and chunk
	micros uint64 // server time of the read
	pttl   int64
	value  any
}

// parseReads reads a read script's reply for keys: {sec, usec, then
// kind, pttl, size, value for each key read}. It returns the results of
// the first keys, as many as the reply holds: at least one, at most
// len(keys).
func parseReads(keys []string, res any) ([]readResult, error) {
	arr, ok := res.([]any)
	if !ok || len(arr) < 6 || (len(arr)-2)%4 != 0 || (len(arr)-2)/4 > len(keys) {
		return nil, fmt.Errorf("read script returned %T of %d values for %d keys from %q", res, len(arr), len(keys), keys[0])
	}
	sec, err1 := strconv.ParseUint(asString(arr[0]), 10, 64)
	usec, err2 := strconv.ParseUint(asString(arr[1]), 10, 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("read script returned a bad TIME %v %v for keys from %q", arr[0], arr[1], keys[0])
	}
	micros := sec*1_000_000 + usec
	n := (len(arr) - 2) / 4
	out := make([]readResult, n)
	for i, key := range keys[:n] {
		f := arr[2+4*i : 6+4*i]
		r := readResult{kind: asString(f[0]), micros: micros}
		pttl, ok1 := f[1].(int64)
		size, ok2 := f[2].(int64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("read script returned PTTL %T and size %T for key %q", f[1], f[2], key)
		}
		switch r.kind {
		case "none":
		case "skip", "unsupported", "big", "chunk":
			r.typ, r.size, r.pttl = asString(f[3]), size, pttl
		default:
			r.pttl, r.value = pttl, f[3]
		}
		out[i] = r
	}
	return out, nil
}

func asString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	case int64:
		return strconv.FormatInt(s, 10)
	}
	return fmt.Sprint(v)
}

// toValue converts a read's value into a pipeline.Value.
func (r *readResult) toValue(key string) (pipeline.Value, error) {
	if r.kind == "string" {
		s, ok := r.value.(string)
		if !ok {
			return pipeline.Value{}, fmt.Errorf("key %q: string value arrived as %T", key, r.value)
		}
		return pipeline.Value{Type: pipeline.TypeString, String: []byte(s)}, nil
	}
	arr, ok := r.value.([]any)
	if !ok {
		return pipeline.Value{}, fmt.Errorf("key %q: %s value arrived as %T", key, r.kind, r.value)
	}
	if r.kind == "stream" {
		return streamValue(key, arr)
	}
	elems := make([][]byte, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return pipeline.Value{}, fmt.Errorf("key %q: %s element arrived as %T", key, r.kind, e)
		}
		elems[i] = []byte(s)
	}
	switch r.kind {
	case "hash":
		if len(elems)%2 != 0 {
			return pipeline.Value{}, fmt.Errorf("key %q: hash has an odd number of field/value elements", key)
		}
		fields := make([]pipeline.Field, len(elems)/2)
		for i := range fields {
			fields[i] = pipeline.Field{Name: elems[2*i], Value: elems[2*i+1]}
		}
		return pipeline.Value{Type: pipeline.TypeHash, Hash: fields}, nil
	case "list":
		return pipeline.Value{Type: pipeline.TypeList, List: elems}, nil
	case "set":
		return pipeline.Value{Type: pipeline.TypeSet, Set: elems}, nil
	case "zset":
		if len(elems)%2 != 0 {
			return pipeline.Value{}, fmt.Errorf("key %q: zset has an odd number of member/score elements", key)
		}
		members := make([]pipeline.ScoredMember, len(elems)/2)
		for i := range members {
			score, err := pipeline.ParseScore(string(elems[2*i+1]))
			if err != nil {
				return pipeline.Value{}, fmt.Errorf("key %q: %w", key, err)
			}
			members[i] = pipeline.ScoredMember{Member: elems[2*i], Score: score}
		}
		return pipeline.Value{Type: pipeline.TypeZSet, ZSet: members}, nil
	}
	return pipeline.Value{}, fmt.Errorf("key %q: unexpected type %q", key, r.kind)
}

// expireAt is the absolute expiry from the server's clock at the read.
func (r *readResult) expireAt() time.Time {
	if r.pttl < 0 {
		return time.Time{}
	}
	return time.UnixMicro(int64(r.micros)).Add(time.Duration(r.pttl) * time.Millisecond).Truncate(time.Millisecond)
}

// typesArg is the ARGV[1] of readScript for a set of types.
func typesArg(types []pipeline.Type) string {
	if len(types) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte(',')
	for _, t := range types {
		b.WriteString(t.String())
		b.WriteByte(',')
	}
	return b.String()
}

// streamValue reads the read script's {entries, meta} of a stream.
func streamValue(key string, arr []any) (pipeline.Value, error) {
	bad := func(what string) (pipeline.Value, error) {
		return pipeline.Value{}, fmt.Errorf("key %q: stream %s arrived in an unexpected shape", key, what)
	}
	if len(arr) != 2 {
		return bad("value")
	}
	raw, ok := arr[0].([]any)
	if !ok {
		return bad("entries")
	}
	entries, err := streamEntries(raw)
	if err != nil {
		return pipeline.Value{}, fmt.Errorf("key %q: %w", key, err)
	}
	meta, ok := arr[1].([]any)
	if !ok {
		return bad("meta")
	}
	st, err := streamMeta(meta)
	if err != nil {
		return pipeline.Value{}, fmt.Errorf("key %q: %w", key, err)
	}
	st.Entries = entries
	return pipeline.Value{Type: pipeline.TypeStream, Stream: st}, nil
}

// streamEntries reads XRANGE's reply: {{id, {field, value, …}}, …}.
func streamEntries(raw []any) ([]pipeline.StreamEntry, error) {
	out := make([]pipeline.StreamEntry, 0, len(raw))
	for _, r := range raw {
		e, ok := r.([]any)
		if !ok || len(e) != 2 {
			return nil, fmt.Errorf("stream entry arrived as %T", r)
		}
		kv, ok := e[1].([]any)
		if !ok || len(kv)%2 != 0 {
			return nil, fmt.Errorf("stream entry %v: fields arrived as %T", e[0], e[1])
		}
		fields := make([]pipeline.Field, len(kv)/2)
		for i := range fields {
			fields[i] = pipeline.Field{Name: []byte(asString(kv[2*i])), Value: []byte(asString(kv[2*i+1]))}
		}
		out = append(out, pipeline.StreamEntry{ID: asString(e[0]), Fields: fields})
	}
	return out, nil
}

// streamMeta reads streamMetaLua's reply.
func streamMeta(meta []any) (*pipeline.Stream, error) {
	if len(meta) != 2 {
		return nil, fmt.Errorf("stream meta arrived with %d parts", len(meta))
	}
	info, ok := meta[0].([]any)
	if !ok || len(info) != 3 {
		return nil, fmt.Errorf("stream info arrived as %T", meta[0])
	}
	st := &pipeline.Stream{LastID: asString(info[0]), MaxDeletedID: asString(info[1]), EntriesAdded: asInt(info[2])}
	groups, _ := meta[1].([]any)
	for _, g := range groups {
		a, ok := g.([]any)
		if !ok || len(a) != 3 {
			return nil, fmt.Errorf("stream group arrived as %T", g)
		}
		st.Groups = append(st.Groups, pipeline.StreamGroup{Name: []byte(asString(a[0])), LastDeliveredID: asString(a[1]), EntriesRead: asInt(a[2])})
	}
	return st, nil
}

func asInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			return -1
		}
		return i
	}
	return -1
}
