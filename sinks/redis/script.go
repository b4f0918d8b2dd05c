package redis

import (
	goredis "github.com/redis/go-redis/v9"
)

// applyScript applies one event to one key, atomically with the version
// check, so no other write can fall between the check and the write.
//
// KEYS[1] the data key; KEYS[2] its version key (same hash slot).
// ARGV[1] the event's version (bytes)
// ARGV[2] op: 'u' whole value or first chunk, 'c' a later chunk, 'd' delete
// ARGV[3] type: string | hash | list | set | zset | stream
// ARGV[4] absolute expiry in ms, or ”
// ARGV[5] how long the version key lives, in ms (the tombstone retention)
// ARGV[6] the chunk's offset: elements of a list or stream, bytes of a
// string; or ”
// ARGV[7..] the value: the string; hash field, value, …; list or set
// elements; zset score, member, …; for a stream see streamArgs.
//
// Returns 1 when it wrote, 0 when the target already held this version or
// a newer one (or, for a later chunk, another version).
//
// Versions compare byte by byte: Lua's own string comparison follows the
// server's locale (Redis calls setlocale), which is not byte order.
var applyScript = goredis.NewScript(`
local function newer(a, b)
  if not b then return true end
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
-- writeStream adds a stream piece's entries with their own IDs and, at
-- its last piece, sets what the entries do not say: the last ID, the
-- counters, the consumer groups (see streamArgs for the ARGV). A stream
-- left empty by XDEL still exists: MKSTREAM through a scratch group
-- creates it. Nothing here may fail once the key is written (a script is
-- not rolled back): the sink checked the event (Value.Validate), and a
-- call that an older target may refuse runs under pcall with a fallback.
local function writeStream(key)
  local ngroups = tonumber(ARGV[12])
  local i, n = 13 + 3 * ngroups, #ARGV
  while i <= n do
    local nf = tonumber(ARGV[i + 1])
    redis.call('XADD', key, ARGV[i], unpack(ARGV, i + 2, i + 1 + 2 * nf))
    i = i + 2 + 2 * nf
  end
  if ARGV[7] ~= '1' then return end
  if redis.call('EXISTS', key) == 0 then
    redis.call('XGROUP', 'CREATE', key, 'cutover:empty', '$', 'MKSTREAM')
    redis.call('XGROUP', 'DESTROY', key, 'cutover:empty')
  end
  -- The counters exist from Redis 7 on: without them, the last ID alone.
  -- XSETID refuses a max deleted ID past the ID it sets, yet a stream
  -- may hold one (XDEL, then XSETID lowers the last ID): the counters go
  -- in at ARGV[11], the later of the two, then the last ID is lowered.
  local set = false
  if ARGV[9] ~= '' and ARGV[10] ~= '-1' then
    set = not redis.pcall('XSETID', key, ARGV[11], 'ENTRIESADDED', ARGV[10], 'MAXDELETEDID', ARGV[9])['err']
  end
  if not set then
    redis.call('XSETID', key, ARGV[8])
  elseif ARGV[11] ~= ARGV[8] then
    redis.pcall('XSETID', key, ARGV[8])
  end
  -- The groups become the event's: a group made on the target while the
  -- pieces were written (an application's XGROUP CREATE … MKSTREAM) goes,
  -- as a whole write's DEL would have taken it.
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    for f = 1, #g, 2 do
      if g[f] == 'name' then redis.call('XGROUP', 'DESTROY', key, g[f + 1]) end
    end
  end
  for g = 13, 12 + 3 * ngroups, 3 do
    local created = false
    if ARGV[g + 2] ~= '-1' then
      created = not redis.pcall('XGROUP', 'CREATE', key, ARGV[g], ARGV[g + 1], 'ENTRIESREAD', ARGV[g + 2])['err']
    end
    if not created then redis.call('XGROUP', 'CREATE', key, ARGV[g], ARGV[g + 1]) end
  end
end
local key, vkey, ver, op, ty = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
local cur = redis.call('GET', vkey)
if op == 'c' then
  if cur ~= ver then return 0 end
  if ty == 'list' and redis.call('LLEN', key) ~= tonumber(ARGV[6]) then
    return 0 -- this piece is already there (a replay)
  end
  if ty == 'string' and redis.call('STRLEN', key) ~= tonumber(ARGV[6]) then
    return 0 -- the same, for a string read in pieces
  end
  if ty == 'stream' and redis.call('XLEN', key) ~= tonumber(ARGV[6]) then
    return 0 -- the same, for a stream read in pieces
  end
else
  if not newer(ver, cur) then return 0 end
  if op == 'u' and ty == 'string' then
    -- The common case in three calls: SET replaces a value of any type
    -- and sets (or clears) its expiry at once.
    if ARGV[4] ~= '' then
      redis.call('SET', key, ARGV[7], 'PXAT', ARGV[4])
    else
      redis.call('SET', key, ARGV[7])
    end
    redis.call('SET', vkey, ver, 'PX', ARGV[5])
    return 1
  end
  redis.call('DEL', key)
end
if op ~= 'd' then
  local n = #ARGV
  local cmd = nil
  if ty == 'string' and op == 'c' then
    redis.call('APPEND', key, ARGV[7])
  elseif ty == 'string' then
    redis.call('SET', key, ARGV[7])
  elseif ty == 'hash' then cmd = 'HSET'
  elseif ty == 'list' then cmd = 'RPUSH'
  elseif ty == 'set' then cmd = 'SADD'
  elseif ty == 'zset' then cmd = 'ZADD'
  elseif ty == 'stream' then writeStream(key)
  else
    return redis.error_reply('cutover: cannot write type ' .. ty)
  end
  if cmd then
    -- 1000 arguments at a time: unpack has a limit, and pairs stay whole.
    for i = 7, n, 1000 do
      redis.call(cmd, key, unpack(ARGV, i, math.min(i + 999, n)))
    end
  end
  if ARGV[4] ~= '' then
    redis.call('PEXPIREAT', key, ARGV[4])
  end
end
redis.call('SET', vkey, ver, 'PX', ARGV[5])
return 1
`)
