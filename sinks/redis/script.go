package redis

import (
	goredis "github.com/redis/go-redis/v9"
)

// applyScript applies a batch of events, each atomically with its version
// check (the whole call runs atomically), so no other write can fall
// between a check and its write. One call per batch, not per key: the
// server parses one command and enters Lua once for many keys.
//
// Every key the script touches is declared in KEYS, three per event:
// KEYS[3i-2] the data key, KEYS[3i-1] its version bucket (a hash in the
// same slot, see versions.go), KEYS[3i] its legacy version key (a string
// key per data key, the layout before buckets; same slot).
//
// ARGV[1] how long a deadline entry lives after its last write, in
// seconds (the tombstone retention); ARGV[2] '1' when legacy version keys
// may still exist on this target, else '0'. Then each event: its number of
// arguments m, and m arguments laid out as
//
//	[1] the event's version, compact (compactVersion)
//	[2] op: 'u' whole value or first chunk, 'c' a later chunk, 'd' delete
//	[3] type: string | hash | list | set | zset | stream | none
//	[4] absolute expiry in ms, or ”
//	[5] unused (”)
//	[6] the chunk's offset: elements of a list or stream, bytes of a
//	    string; or ”
//	[7..] the value: the string; hash field, value, …; list or set
//	    elements; zset score, member, …; for a stream see streamArgs.
//
// Returns one string per event: '1' when it wrote, '0' when the target
// already held this version or a newer one (or, for a later chunk, another
// version), 'E' and the message when a call failed: each event runs under
// pcall, so one refused value does not stop the others. Writes an event
// made before its failing call stay (a script is not rolled back), as
// they did with one call per key: the event is retried or rejected whole.
//
// Versions compare byte by byte: Lua's own string comparison follows the
// server's locale (Redis calls setlocale), which is not byte order.
var applyScript = goredis.NewScript(applyLua)

// applyLua is applyScript's source.
const applyLua = `
local ret, legacyOn = tonumber(ARGV[1]), ARGV[2] == '1'
local now = tonumber(redis.call('TIME')[1])
local function newer(a, b)
  if not b then return true end
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
-- compact is compactVersion (versions.go) for a legacy key's version.
local function compact(v)
  if #v < 8 then return '\0' .. v end
  local z = 0
  while z < 8 and string.byte(v, z + 1) == 0 do z = z + 1 end
  return string.char(9 - z) .. string.sub(v, z + 1)
end
-- stored is the version the target holds for a key, compact, or nil: an
-- entry past its deadline is no longer held. While legacy version keys
-- may exist, it also says so, for remember.
local function stored(key, bkey, lkey)
  local cur = nil
  local e = redis.call('HGET', bkey, key)
  if e then
    if string.sub(e, 1, 1) == 'd' then
      if struct.unpack('>I4', e, 2) > now then cur = string.sub(e, 6) end
    else
      cur = string.sub(e, 2)
    end
  end
  -- While workers of the old layout may still run (a rolling upgrade),
  -- the newer of the two counts: an old worker writes only the legacy key.
  if legacyOn then
    local l = redis.call('GET', lkey)
    if l and newer(compact(l), cur) then cur = compact(l) end
  end
  return cur, legacyOn
end
-- expand is expandVersion (versions.go): the raw version an old worker reads.
local function expand(c)
  local p = string.byte(c, 1)
  if p == 0 then return string.sub(c, 2) end
  return string.rep('\0', 9 - p) .. string.sub(c, 2)
end
-- clean drops a bucket's entries past their deadline. It runs when a new
-- entry brings the bucket to a power of two from 64 on, so its cost is
-- constant per entry added, and a bucket holds at most about twice its
-- live entries.
local function clean(bkey)
  local all = redis.call('HGETALL', bkey)
  local dead = {}
  for i = 1, #all, 2 do
    local e = all[i + 1]
    if string.sub(e, 1, 1) == 'd' and struct.unpack('>I4', e, 2) <= now then dead[#dead + 1] = all[i] end
  end
  for i = 1, #dead, 1000 do
    redis.call('HDEL', bkey, unpack(dead, i, math.min(i + 999, #dead)))
  end
end
-- remember stores ver as key's version: with no deadline for a value
-- that does not expire (its entry protects it as long as it exists),
-- else until the later of now and its expiry, plus the retention.
local function remember(key, bkey, lkey, legacy, ver, op, exp)
  local e
  if op ~= 'd' and exp == '' then
    e = 'v' .. ver
  else
    -- From the next whole second (TIME's seconds are rounded down), so
    -- a tombstone lives its whole retention; capped where the four
    -- bytes end (the year 2106) rather than wrapped to the past.
    local from = now + 1
    if op ~= 'd' then from = math.max(now + 1, math.floor(tonumber(exp) / 1000) + 1) end
    e = 'd' .. struct.pack('>I4', math.min(from + ret, 4294967295)) .. ver
  end
  if redis.call('HSET', bkey, key, e) == 1 then
    local n = redis.call('HLEN', bkey)
    if n >= 64 and bit.band(n, n - 1) == 0 then clean(bkey) end
  end
  -- Old workers see only the legacy key: keep it current, not gone.
  if legacy then redis.call('SET', lkey, expand(ver), 'EX', ret) end
end
-- writeStream adds a stream piece's entries with their own IDs and, at
-- its last piece, sets what the entries do not say: the last ID, the
-- counters, the consumer groups (see streamArgs for the arguments from
-- b+7). A stream left empty by XDEL still exists: MKSTREAM through a
-- scratch group creates it. Nothing here may fail once the key is
-- written: the sink checked the event (Value.Validate), and a call that
-- an older target may refuse runs under pcall with a fallback.
local function writeStream(key, b, m)
  local ngroups = tonumber(ARGV[b + 12])
  local i, n = b + 13 + 3 * ngroups, b + m
  while i <= n do
    local nf = tonumber(ARGV[i + 1])
    redis.call('XADD', key, ARGV[i], unpack(ARGV, i + 2, i + 1 + 2 * nf))
    i = i + 2 + 2 * nf
  end
  if ARGV[b + 7] ~= '1' then return end
  if redis.call('EXISTS', key) == 0 then
    redis.call('XGROUP', 'CREATE', key, 'cutover:empty', '$', 'MKSTREAM')
    redis.call('XGROUP', 'DESTROY', key, 'cutover:empty')
  end
  -- The counters exist from Redis 7 on: without them, the last ID alone.
  -- XSETID refuses a max deleted ID past the ID it sets, yet a stream
  -- may hold one (XDEL, then XSETID lowers the last ID): the counters go
  -- in at b+11, the later of the two, then the last ID is lowered.
  local set = false
  if ARGV[b + 9] ~= '' and ARGV[b + 10] ~= '-1' then
    set = not redis.pcall('XSETID', key, ARGV[b + 11], 'ENTRIESADDED', ARGV[b + 10], 'MAXDELETEDID', ARGV[b + 9])['err']
  end
  if not set then
    redis.call('XSETID', key, ARGV[b + 8])
  elseif ARGV[b + 11] ~= ARGV[b + 8] then
    redis.pcall('XSETID', key, ARGV[b + 8])
  end
  -- The groups become the event's: a group made on the target while the
  -- pieces were written (an application's XGROUP CREATE … MKSTREAM) goes,
  -- as a whole write's DEL would have taken it.
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    for f = 1, #g, 2 do
      if g[f] == 'name' then redis.call('XGROUP', 'DESTROY', key, g[f + 1]) end
    end
  end
  for g = b + 13, b + 12 + 3 * ngroups, 3 do
    local created = false
    if ARGV[g + 2] ~= '-1' then
      created = not redis.pcall('XGROUP', 'CREATE', key, ARGV[g], ARGV[g + 1], 'ENTRIESREAD', ARGV[g + 2])['err']
    end
    if not created then redis.call('XGROUP', 'CREATE', key, ARGV[g], ARGV[g + 1]) end
  end
end
-- apply writes one event whose arguments are ARGV[b+1 .. b+m].
local function apply(key, bkey, lkey, b, m)
  local ver, op, ty, exp = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local cur, legacy = stored(key, bkey, lkey)
  if op == 'c' then
    if cur ~= ver then return '0' end
    if ty == 'list' and redis.call('LLEN', key) ~= tonumber(ARGV[b + 6]) then
      return '0' -- this piece is already there (a replay)
    end
    if ty == 'string' and redis.call('STRLEN', key) ~= tonumber(ARGV[b + 6]) then
      return '0' -- the same, for a string read in pieces
    end
    if ty == 'stream' and redis.call('XLEN', key) ~= tonumber(ARGV[b + 6]) then
      return '0' -- the same, for a stream read in pieces
    end
  else
    if not newer(ver, cur) then return '0' end
    if op == 'u' and ty == 'string' then
      -- The common case: SET replaces a value of any type and sets (or
      -- clears) its expiry at once.
      if exp ~= '' then
        redis.call('SET', key, ARGV[b + 7], 'PXAT', exp)
      else
        redis.call('SET', key, ARGV[b + 7])
      end
      remember(key, bkey, lkey, legacy, ver, op, exp)
      return '1'
    end
    redis.call('DEL', key)
  end
  if op ~= 'd' then
    local n = b + m
    local cmd = nil
    if ty == 'string' and op == 'c' then
      redis.call('APPEND', key, ARGV[b + 7])
    elseif ty == 'string' then
      redis.call('SET', key, ARGV[b + 7])
    elseif ty == 'hash' then cmd = 'HSET'
    elseif ty == 'list' then cmd = 'RPUSH'
    elseif ty == 'set' then cmd = 'SADD'
    elseif ty == 'zset' then cmd = 'ZADD'
    elseif ty == 'stream' then writeStream(key, b, m)
    else
      return 'Ecutover: cannot write type ' .. ty
    end
    if cmd then
      -- 1000 arguments at a time: unpack has a limit, and pairs stay whole.
      for i = b + 7, n, 1000 do
        redis.call(cmd, key, unpack(ARGV, i, math.min(i + 999, n)))
      end
    end
    if exp ~= '' then
      redis.call('PEXPIREAT', key, exp)
    end
  end
  remember(key, bkey, lkey, legacy, ver, op, exp)
  return '1'
end
local out, p = {}, 3
for i = 1, #KEYS, 3 do
  local m = tonumber(ARGV[p])
  local ok, r = pcall(apply, KEYS[i], KEYS[i + 1], KEYS[i + 2], p, m)
  if ok then
    out[#out + 1] = r
  elseif type(r) == 'table' and r.err then
    out[#out + 1] = 'E' .. r.err
  else
    out[#out + 1] = 'E' .. tostring(r)
  end
  p = p + 1 + m
end
return out
`
